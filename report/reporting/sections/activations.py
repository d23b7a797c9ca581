"""Serves report/_01-activations.qmd: activation functions, from the ``activations`` run (curves, derivative check),
plus the two interactive charts and the ELU values of TO-DO 1.1 computed by anncore."""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown

from anncore.activations import elu, elu_derivative
from experiments.charts import activation_comparison, activation_curves, elu_alpha_explorer
from reporting.display import ChartOutput, Outputs, markdown_table
from reporting.i18n import _, chart_language
from reporting.section import Section
from reporting.store import Store, StoredRun

SECTION = Section("activations")
# The notebook's four functions plus ELU with its default alpha, for the overview chart.
OVERVIEW = (("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.01), ("elu", 1.0))
ELU_TEST_POINTS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # TO-DO 1.1


def status() -> Markdown:
    """Which run the activation curves come from, or the command that produces it."""
    return SECTION.status()


def overview_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of activations.csv for the :data:`OVERVIEW` functions."""
    keep = np.zeros(len(table), dtype=bool)
    for name, alpha in OVERVIEW:
        same = table["function"] == name
        keep |= same & (table["alpha"].isna() if alpha is None else np.isclose(table["alpha"], alpha))
    return table[keep]


@SECTION.output
def curves(store: Store, run: StoredRun) -> Outputs:
    """Values and derivatives of the notebook's functions and ELU, from activations.csv."""
    table = overview_rows(store.load_csv(run, "activations.csv"))
    return SECTION.chart(
        activation_curves(table, language=chart_language()),
        "activation-curves",
        _("Activation functions and their derivatives"),
        [run],
    )


def derivative_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Per function: the largest |analytic - numerical| derivative and the largest f'(z) seen."""
    table = table.assign(
        label=[n if pd.isna(a) else f"{n} (α = {a:g})" for n, a in zip(table["function"], table["alpha"])],
        gap=(table["derivative"] - table["numerical_derivative"]).abs(),
    )
    grouped = table.groupby("label", sort=False)
    return pd.DataFrame(
        {
            _("function"): list(grouped.groups),
            _("z range"): [f"[{g['z'].min():g}, {g['z'].max():g}]" for _name, g in grouped],
            _("largest f'(z) on the grid"): [f"{g['derivative'].max():.4f}" for _name, g in grouped],
            _("largest gap, analytic vs numerical f'(z)"): [f"{g['gap'].max():.1e}" for _name, g in grouped],
        }
    )


@SECTION.output
def derivative_check(store: Store, run: StoredRun) -> Markdown:
    """Table: each analytic derivative against a central difference, and its largest value."""
    frame = derivative_frame(store.load_csv(run, "activations.csv"))
    return SECTION.table(frame, _("Analytic derivatives checked against central differences"), [run], "derivative-check")


@SECTION.output
def comparison(store: Store, run: StoredRun) -> Outputs:
    """The interactive two-function comparison (dropdowns; works without a kernel)."""
    chart = activation_comparison(store.load_csv(run, "activations.csv"), language=chart_language())
    return SECTION.chart(
        chart,
        "activation-comparison",
        _("Two activation functions compared"),
        [run],
        note=_("Choose the two functions in the menus above the chart (HTML version; the PDF shows the starting pair)."),
    )


def elu_explorer() -> Outputs:
    """ELU next to ReLU and Leaky ReLU with an alpha slider from 0.1 to 2.0 (TO-DO 1.2)."""
    return Outputs(
        ChartOutput(
            elu_alpha_explorer(language=chart_language()),
            "elu-alpha-explorer",
            _("ELU with an alpha slider, beside ReLU and Leaky ReLU"),
            caption="*"
            + _(
                "Drawn in the browser from the ELU formula as the slider moves (HTML version; the PDF "
                "shows α = 1). No run needed: nothing here is measured."
            )
            + "*",
        ),
    )


def elu_values() -> Markdown:
    """TO-DO 1.1: ELU and its derivative at z = -2, -1, 0, 1, 2, computed by anncore now."""
    z = np.array(ELU_TEST_POINTS)
    frame = pd.DataFrame(
        {
            "$z$": [f"{v:g}" for v in z],
            r"$\mathrm{ELU}(z)$, $\alpha = 1$": [f"{v + 0.0:.6g}" for v in elu(z)],
            r"$\mathrm{ELU}'(z)$": [f"{v + 0.0:.6g}" for v in elu_derivative(z)],
        }
    )
    caption = _("ELU on the TO-DO 1.1 test array, computed by `anncore.activations.elu` at render time")
    return Markdown(markdown_table(frame, caption, "elu-values"))
