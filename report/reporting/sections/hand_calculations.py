"""Serves report/_01-activations.qmd (the single neurons), _02-forward.qmd and _03-backprop.qmd:
the worked examples (notebook sections 2, 6, 7 and TO-DO 2), step by step from the
``hand_calculations`` run's traces, each checked against PyTorch autograd and against the
values the notebook prints."""

from __future__ import annotations

import math

import pandas as pd
from IPython.display import Markdown

from reporting.display import Outputs, markdown_table
from reporting.hand_calc_latex import Step, forward_steps, trace_markdown
from reporting.i18n import _, ngettext
from reporting.section import Section
from reporting.store import Store, StoredRun

SECTION = Section("hand_calculations")
SINGLE_NEURON_KEYS = (
    "single_neuron_sigmoid",
    "single_neuron_tanh",
    "single_neuron_relu",
    "single_neuron_leaky_relu",
)


def status() -> Markdown:
    """Which run the hand calculations come from, or the command that produces it."""
    return SECTION.status()


def load_trace(store: Store, run: StoredRun, key: str) -> dict:
    """The ``Trace.to_dict()`` of worked example ``key`` stored by ``run``."""
    return store.load_json(run, f"traces/{key}.json")


def autograd_sentence(store: Store, run: StoredRun, key: str) -> str:
    """One sentence stating how far the trace is from PyTorch autograd on the same network."""
    table = store.load_csv(run, "autograd_differences.csv")
    rows = table[table["example"] == key]
    if rows.empty:
        return "*" + _("The run logged no autograd comparison for `{key}`.").format(key=key) + "*"
    difference = float(rows["max_abs_difference"].iloc[0])
    sentence = (
        _(
            "**Check against PyTorch.** The same network recomputed with `torch.autograd` in float64 "
            "agrees with every number above: the largest absolute difference is {difference}."
        )
        if difference < 1e-9
        else _(
            "**Check against PyTorch.** The same network recomputed with `torch.autograd` in float64 "
            "**differs** from every number above: the largest absolute difference is {difference}."
        )
    )
    return sentence.format(difference=f"{difference:.1e}")


def discrepancy_table(store: Store, run: StoredRun, key: str) -> str:
    """Markdown listing where the notebook's printed values differ from the exact ones."""
    table = store.load_csv(run, "discrepancies.csv", dtype={"printed_text": str})
    rows = table[table["example"] == key]
    if rows.empty:
        return _("Every value the notebook prints for this example equals the exact value rounded to the digits it shows.")
    shown = pd.DataFrame(
        {
            _("quantity"): [f"`{q}`" for q in rows["quantity"]],
            _("notebook prints"): list(rows["printed_text"]),
            _("exact"): [f"{value:.6g}" for value in rows["exact"]],
            _("why they differ"): [_(note) for note in rows["note"]],
        }
    )
    heading = ngettext(
        "**Where the notebook's printed numbers differ from the exact values** ({n} of them):",
        "**Where the notebook's printed numbers differ from the exact values** ({n} of them):",
        len(rows),
    ).format(n=len(rows))
    caption = _("Notebook values vs exact values (MLflow run `{id}`)").format(id=run.short_id)
    return heading + "\n\n" + markdown_table(shown, caption, "discrepancies-" + key.replace("_", "-"))


@SECTION.output
def worked_example(store: Store, run: StoredRun, key: str, decimals: int = 4) -> Outputs:
    """A worked example step by step, its autograd check and its notebook discrepancies.

    Parameters
    ----------
    key : str
        A worked-example key (``forward_2_3_1``, ``backprop_2_2_1``, ``todo_3_2_1``, ...).
    decimals : int
        Decimal places for computed values.
    """
    trace = load_trace(store, run, key)
    return Outputs(
        Markdown(
            ngettext(
                "Values rounded to {n} decimal place for display; each is computed from unrounded "
                "numbers by the engine (trace `{trace}`).",
                "Values rounded to {n} decimal places for display; each is computed from unrounded "
                "numbers by the engine (trace `{trace}`).",
                decimals,
            ).format(n=decimals, trace=f"traces/{key}.json")
            + "\n"
        ),
        Markdown(trace_markdown(trace, decimals)),
        Markdown(autograd_sentence(store, run, key) + "\n"),
        Markdown(discrepancy_table(store, run, key) + "\n"),
        Markdown(SECTION.source_line([run]) + "\n"),
    )


@SECTION.output
def single_neurons(store: Store, run: StoredRun, decimals: int = 4) -> Outputs:
    """The notebook's one-neuron example: z once, then a = f(z) for each activation."""
    traces = [load_trace(store, run, key) for key in SINGLE_NEURON_KEYS]
    first = forward_steps(traces[0], decimals)[0]
    lines = [first.equations[0]] + [forward_steps(t, decimals)[0].equations[1] for t in traces]
    checks = [autograd_sentence(store, run, key) for key in SINGLE_NEURON_KEYS]
    worst = max(_difference(store, run, key) for key in SINGLE_NEURON_KEYS)
    notes = [discrepancy_table(store, run, key) for key in SINGLE_NEURON_KEYS]
    differing = [note for key, note in zip(SINGLE_NEURON_KEYS, notes) if _has_discrepancies(store, run, key)]
    agree = all(_difference(store, run, key) < 1e-9 for key in SINGLE_NEURON_KEYS)
    return Outputs(
        Markdown(Step(_("Pre-activation, then each activation function"), tuple(lines)).to_markdown()),
        Markdown(
            _(
                "**Check against PyTorch.** Recomputed with `torch.autograd` in float64, the four "
                "neurons agree with the values above to within {difference}."
            ).format(difference=f"{worst:.1e}")
            + "\n"
            if agree
            else "\n\n".join(checks) + "\n"
        ),
        Markdown(
            "\n\n".join(differing) + "\n"
            if differing
            else _("Every value the notebook prints here equals the exact value rounded to the digits it shows.") + "\n"
        ),
        Markdown(SECTION.source_line([run]) + "\n"),
    )


def _has_discrepancies(store: Store, run: StoredRun, key: str) -> bool:
    table = store.load_csv(run, "discrepancies.csv", dtype={"printed_text": str})
    return bool((table["example"] == key).any())


def _difference(store: Store, run: StoredRun, key: str) -> float:
    table = store.load_csv(run, "autograd_differences.csv")
    rows = table[table["example"] == key]
    return float(rows["max_abs_difference"].iloc[0]) if not rows.empty else math.nan


@SECTION.output
def todo_answers(store: Store, run: StoredRun, decimals: int = 4) -> Markdown:
    """TO-DO 2.1/2.2 in one table: the 3-2-1 output, loss and output-layer gradients."""
    trace = load_trace(store, run, "todo_3_2_1")
    output = trace["layers"][-1]
    rows = [(r"$\hat{y} = a^{(2)}$", trace["y_hat"][0]), ("$L$", trace["loss"])]
    rows += [
        (rf"$\partial L / \partial W^{{(2)}}_{{1{j}}}$", grad)
        for j, grad in enumerate(output["grad_weights"][0], start=1)
    ]
    rows += [(r"$\partial L / \partial b^{(2)}$", output["grad_bias"][0])]
    frame = pd.DataFrame(
        {
            _("quantity"): [r for r, _v in rows],
            ngettext("value ({n} decimal)", "value ({n} decimals)", decimals).format(n=decimals): [
                f"{v + 0.0:.{decimals}f}" for _r, v in rows
            ],
        }
    )
    return SECTION.table(frame, _("Answers to TO-DO 2.1 and 2.2"), [run], "todo-answers")
