"""Serves report/_04-pytorch.qmd: the PyTorch models: SimpleANN's parameters (``simple_ann`` run), the baseline
classifier's parameters (from anncore, checked against the ``baseline`` run), CustomANN's design."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from anncore.models import CustomANN, FashionMNISTClassifier, architecture_string, parameter_table
from reporting.display import Outputs, markdown_table
from reporting.i18n import N_, _, integer
from reporting.section import Section
from reporting.store import Store, StoredRun

SECTION = Section("simple_ann")
BASELINE = Section("baseline")
# CustomANN designs the suite trains: the synthetic task and the depth study's arms.
CUSTOM_DESIGNS = ((2, 4, 4), (784, 256, 10), (784, 128, 64, 10), (784, 128, 64, 32, 16, 10))


def status() -> Markdown:
    """Which run SimpleANN's table comes from, or the command that produces it."""
    return SECTION.status()


def _with_total(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.assign(shape=table["shape"].astype(str), count=[integer(c) for c in table["count"]])
    label = _("total")
    total = pd.DataFrame(
        {"name": [f"**{label}**"], "shape": [""], "count": [f"**{integer(table['count'].sum())}**"]}
    )
    headers = {"name": _("name"), "shape": _("shape"), "count": _("count")}
    return pd.concat([shown, total], ignore_index=True).rename(columns=headers)


# The count lines the simple_ann run appends to PyTorch's printout of the model (its module tree stays as printed).
SUMMARY_LINES = (N_("Total parameters:"), N_("Trainable parameters:"))


def translated_summary(summary: str) -> str:
    """The run's ``model_summary.txt`` with its count lines in the edition's language."""
    lines = []
    for line in summary.splitlines():
        for start in SUMMARY_LINES:
            if line.startswith(start):
                line = _(start) + line[len(start) :]
        lines.append(line)
    return "\n".join(lines)


@SECTION.output
def simple_ann(store: Store, run: StoredRun) -> Outputs:
    """SimpleANN(4, 8, 2): its printed structure and parameter table, from the run."""
    summary = translated_summary(store.load_text(run, "model_summary.txt").strip())
    table = store.load_csv(run, "parameters.csv")
    return Outputs(
        Markdown(f"```text\n{summary}\n```\n"),
        SECTION.table(
            _with_total(table),
            _("Parameters of SimpleANN {architecture}").format(architecture=run.params.get("architecture", "")),
            [run],
            "simple-ann-parameters",
        ),
    )


def classifier() -> Outputs:
    """The baseline FashionMNISTClassifier's parameter table, with the baseline run's count."""
    model = FashionMNISTClassifier()
    table = parameter_table(model)
    total = int(table["count"].sum())
    frame = _with_total(table)
    caption = _("Parameters of FashionMNISTClassifier 784-512-256-128-10, built by `anncore.models` at render time")
    run = BASELINE.run()
    if run is None:
        check = _("The baseline run, once made, logs its own count to compare with.")
    else:
        logged = int(float(run.params.get("parameter_count", "nan")))
        sentence = (
            _("The count logged by the baseline run ({run}) matches: {count}.")
            if logged == total
            else _("The count logged by the baseline run ({run}) **does not match**: {count}.")
        )
        check = sentence.format(run=run.citation(), count=integer(logged))
    return Outputs(Markdown(markdown_table(frame, caption, "classifier-parameters")), Markdown(check + "\n"))


def custom_designs() -> Markdown:
    """Parameter counts of the CustomANN layouts the suite trains, from anncore and by formula."""
    rows = []
    for sizes in CUSTOM_DESIGNS:
        model = CustomANN(list(sizes))
        by_formula = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        rows.append(
            {
                _("layer sizes"): architecture_string(sizes),
                _("linear layers"): str(len(model.linear_layers())),
                "count_parameters()": integer(model.count_parameters()),
                r"$\sum_l (n_{l-1} + 1)\, n_l$": integer(by_formula),
            }
        )
    caption = _("CustomANN layouts used in this report, counted by `anncore.models` at render time")
    return Markdown(markdown_table(pd.DataFrame(rows), caption, "custom-designs"))

