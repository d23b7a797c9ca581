"""Serves report/_04-pytorch.qmd: the PyTorch models: SimpleANN's parameters (``simple_ann`` run), the baseline
classifier's parameters (from anncore, checked against the ``baseline`` run), CustomANN's design."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from anncore.models import CustomANN, FashionMNISTClassifier, architecture_string, parameter_table
from reporting.display import Outputs, markdown_table
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
    shown = table.assign(shape=table["shape"].astype(str), count=[f"{int(c):,}" for c in table["count"]])
    total = pd.DataFrame({"name": ["**total**"], "shape": [""], "count": [f"**{int(table['count'].sum()):,}**"]})
    return pd.concat([shown, total], ignore_index=True)


@SECTION.output
def simple_ann(store: Store, run: StoredRun) -> Outputs:
    """SimpleANN(4, 8, 2): its printed structure and parameter table, from the run."""
    summary = store.load_text(run, "model_summary.txt").strip()
    table = store.load_csv(run, "parameters.csv")
    return Outputs(
        Markdown(f"```text\n{summary}\n```\n"),
        SECTION.table(_with_total(table), f"Parameters of SimpleANN {run.params.get('architecture', '')}", [run]),
    )


def classifier() -> Outputs:
    """The baseline FashionMNISTClassifier's parameter table, with the baseline run's count."""
    model = FashionMNISTClassifier()
    table = parameter_table(model)
    total = int(table["count"].sum())
    frame = _with_total(table)
    caption = "Parameters of FashionMNISTClassifier 784-512-256-128-10, built by `anncore.models` at render time"
    run = BASELINE.run()
    if run is None:
        check = "The baseline run, once made, logs its own count to compare with."
    else:
        logged = int(float(run.params.get("parameter_count", "nan")))
        verdict = "matches" if logged == total else f"**does not match** ({logged:,})"
        check = f"The count logged by the baseline run ({run.citation()}) {verdict}: {logged:,}."
    return Outputs(Markdown(markdown_table(frame, caption)), Markdown(check + "\n"))


def custom_designs() -> Markdown:
    """Parameter counts of the CustomANN layouts the suite trains, from anncore and by formula."""
    rows = []
    for sizes in CUSTOM_DESIGNS:
        model = CustomANN(list(sizes))
        by_formula = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        rows.append(
            {
                "layer sizes": architecture_string(sizes),
                "linear layers": str(len(model.linear_layers())),
                "count_parameters()": f"{model.count_parameters():,}",
                r"$\sum_l (n_{l-1} + 1)\, n_l$": f"{by_formula:,}",
            }
        )
    return Markdown(
        markdown_table(pd.DataFrame(rows), "CustomANN layouts used in this report, counted by `anncore.models` at render time")
    )

