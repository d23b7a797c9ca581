"""Activation-function charts: the logged curves, a two-function comparison, an ELU alpha slider.

The interactive charts use Vega-Lite params bound to HTML widgets, so they work in a static
HTML page with no Python kernel; the ELU explorer computes its curves in Vega expressions.
"""

from __future__ import annotations

import json
import math
import re
from typing import Callable

import altair as alt
import numpy as np
import pandas as pd

from experiments.charts.i18n import SOURCE_LANGUAGE, number, translator
from experiments.charts.inline_data import inline_data, require_columns

ACTIVATION_COLUMNS = ("function", "alpha", "z", "value", "derivative")

ELU_ALPHA_MIN, ELU_ALPHA_MAX, ELU_ALPHA_STEP = 0.1, 2.0, 0.05

# Vega expressions over a datum with field `z` and the slider param `alpha` (TO-DO 1.2).
ELU_EXPRESSION = "datum.z > 0 ? datum.z : alpha * (exp(datum.z) - 1)"
ELU_DERIVATIVE_EXPRESSION = "datum.z > 0 ? 1 : alpha * exp(datum.z)"


def _labelled(df: pd.DataFrame, language: str = SOURCE_LANGUAGE) -> pd.DataFrame:
    """Rows with a ``label`` naming the function and, where it has one, its alpha (in ``language``'s decimals)."""
    table = df.copy()
    table["function"] = table["function"].astype(str)
    alpha = pd.to_numeric(table["alpha"], errors="coerce")
    table["label"] = [
        name if pd.isna(a) else f"{name} (α={number(a, language)})" for name, a in zip(table["function"], alpha)
    ]
    return table.sort_values(["label", "z"], kind="stable")


def title_expression(template: str, **expressions: str) -> alt.Title:
    """A title computed in the browser: ``template``'s ``{name}`` fields become Vega ``expressions``.

    ``title_expression("Comparison: {a} vs {b}", a="function_a", b="function_b")`` ->
    ``"Comparison: " + function_a + " vs " + function_b``, the literal parts quoted as JSON strings
    (valid Vega string literals whatever a translation contains).
    """
    parts = re.split(r"\{(\w+)\}", template)
    pieces = [json.dumps(part) if i % 2 == 0 else expressions[part] for i, part in enumerate(parts) if part or i % 2]
    return alt.Title(alt.expr(" + ".join(pieces)))


def _tooltip(quantity: str, title: str, extra: list[alt.Tooltip] | None = None, _=str) -> list[alt.Tooltip]:
    return [
        alt.Tooltip("label:N", title=_("function")),
        alt.Tooltip("z:Q", title="z", format=".3f"),
        alt.Tooltip(f"{quantity}:Q", title=title, format=".4f"),
        *(extra or []),
    ]


def _panels(
    table: pd.DataFrame, labels: list[str], _: Callable[[str], str] = str
) -> tuple[alt.Chart, alt.Chart]:
    """Value and derivative line charts over ``z``, one colour per label, texts from the translator ``_``."""
    color = alt.Color("label:N", title=_("function"), sort=labels)
    derivative_extra = (
        [alt.Tooltip("numerical_derivative:Q", title=_("numerical derivative"), format=".4f")]
        if "numerical_derivative" in table.columns
        else []
    )
    x = alt.X("z:Q", title=_("pre-activation z"))
    values = (
        alt.Chart(title=_("Activation f(z)"))
        .mark_line(strokeWidth=2.5)
        .encode(x=x, y=alt.Y("value:Q", title="f(z)"), color=color, tooltip=_tooltip("value", "f(z)", _=_))
        .properties(width=280, height=240)
    )
    derivatives = (
        alt.Chart(title=_("Derivative f′(z)"))
        .mark_line(strokeWidth=2.5, strokeDash=[6, 3])
        .encode(
            x=x,
            y=alt.Y("derivative:Q", title="f′(z)"),
            color=color,
            tooltip=_tooltip("derivative", "f′(z)", derivative_extra, _),
        )
        .properties(width=280, height=240)
    )
    return values, derivatives


def activation_curves(df: pd.DataFrame, language: str = SOURCE_LANGUAGE) -> alt.HConcatChart:
    """Every logged activation function and its derivative, one colour per function.

    Parameters
    ----------
    df : pandas.DataFrame
        An activations.csv table (long format): ``function``, ``alpha`` (empty for functions
        without one), ``z``, ``value``, ``derivative``, optionally ``numerical_derivative``
        (shown in the tooltip).

    Returns
    -------
    altair.HConcatChart
        Values on the left, derivatives on the right.
    """
    require_columns(df, ACTIVATION_COLUMNS, "activations")
    table = _labelled(df, language)
    labels = list(pd.unique(table["label"]))
    _ = translator(language)
    values, derivatives = _panels(table, labels, _)
    return alt.hconcat(values, derivatives, data=inline_data(table)).properties(
        title=_("Activation functions and their derivatives")
    )


def activation_comparison(df: pd.DataFrame, language: str = SOURCE_LANGUAGE) -> alt.HConcatChart:
    """Two activation functions chosen from dropdowns, values and derivatives side by side.

    Parameters
    ----------
    df : pandas.DataFrame
        An activations.csv table, as for ``activation_curves``. The dropdowns offer every
        function in it (with its alpha, where it has one).

    Returns
    -------
    altair.HConcatChart
        With params ``function_a`` and ``function_b`` bound to ``<select>`` elements; starts on
        sigmoid vs ReLU, as the notebook does, when both are present.
    """
    require_columns(df, ACTIVATION_COLUMNS, "activations")
    table = _labelled(df, language)
    labels = list(pd.unique(table["label"]))
    if len(labels) < 2:
        raise ValueError(f"activations must hold at least two functions to compare, got {labels}")

    def first(prefix: str, fallback: str) -> str:
        return next((label for label in labels if label.split(" ")[0] == prefix), fallback)

    default_a = first("sigmoid", labels[0])
    default_b = first("relu", next(label for label in labels if label != default_a))
    _ = translator(language)
    function_a = alt.param(
        name="function_a", value=default_a, bind=alt.binding_select(options=labels, name=_("Function A: "))
    )
    function_b = alt.param(
        name="function_b", value=default_b, bind=alt.binding_select(options=labels, name=_("Function B: "))
    )
    chosen = "datum.label === function_a || datum.label === function_b"
    values, derivatives = _panels(table, labels, _)
    return (
        alt.hconcat(
            values.transform_filter(chosen),
            derivatives.transform_filter(chosen),
            data=inline_data(table),
        )
        .add_params(function_a, function_b)
        .properties(title=title_expression(_("Comparison: {a} vs {b}"), a="function_a", b="function_b"))
    )


def _z_grid(z: object) -> np.ndarray:
    """The explorer's z values: a sorted 1-D float array of at least two finite numbers."""
    if z is None:
        return np.linspace(-5.0, 5.0, 201)
    if isinstance(z, (str, bytes)):
        raise TypeError(f"z must be a sequence of numbers, got {type(z).__name__}: {z!r:.60}")
    try:
        grid = np.asarray(z, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"z must be a sequence of numbers, got {type(z).__name__}: {z!r:.60}") from error
    if grid.ndim != 1 or grid.size < 2 or not np.isfinite(grid).all():
        raise ValueError(f"z must be a 1-D sequence of at least two finite numbers, got shape {grid.shape}: {z!r:.60}")
    return np.sort(grid)


def _check_explorer_alphas(leaky_alpha: object, alpha: object) -> None:
    if isinstance(leaky_alpha, bool) or not isinstance(leaky_alpha, (int, float)) or not math.isfinite(leaky_alpha):
        raise ValueError(f"leaky_alpha must be a finite number, got {leaky_alpha!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not ELU_ALPHA_MIN <= alpha <= ELU_ALPHA_MAX:
        raise ValueError(f"alpha must be a number in [{ELU_ALPHA_MIN}, {ELU_ALPHA_MAX}], got {alpha!r}")


def _explorer_curves(names: dict[str, str], leaky: float):
    """The three functions and derivatives computed in the browser from ``datum.z`` and the param ``alpha``.

    Returns ``folded(suffix, as_field)``: long rows (``function``, ``as_field``) from the computed
    columns ``<key><suffix>`` (suffix ``""`` for values, ``"_derivative"`` for derivatives).
    """
    curves = alt.Chart().transform_calculate(
        elu=ELU_EXPRESSION,
        relu="max(datum.z, 0)",
        leaky_relu=f"datum.z > 0 ? datum.z : {leaky!r} * datum.z",
        elu_derivative=ELU_DERIVATIVE_EXPRESSION,
        relu_derivative="datum.z > 0 ? 1 : 0",
        leaky_relu_derivative=f"datum.z > 0 ? 1 : {leaky!r}",
    )

    def folded(suffix: str, as_field: str) -> alt.Chart:
        keys = [key + suffix for key in names]
        display = " : ".join(f"datum.key === '{key}{suffix}' ? '{name}'" for key, name in names.items())
        return curves.transform_fold(keys, as_=["key", as_field]).transform_calculate(function=f"{display} : ''")

    return folded


def _elu_lower_bound(title: str) -> alt.Chart:
    """A dotted rule at ELU's lower bound -alpha, following the slider (tooltip ``title``)."""
    return (
        alt.Chart()
        .transform_aggregate(count="count()")  # one row, whatever the grid
        .transform_calculate(lower_bound="-alpha")
        .mark_rule(strokeDash=[2, 3], color="#d62728")
        .encode(y="lower_bound:Q", tooltip=[alt.Tooltip("lower_bound:Q", title=title, format=".2f")])
    )


def elu_alpha_explorer(
    z: object = None, leaky_alpha: float = 0.01, alpha: float = 1.0, language: str = SOURCE_LANGUAGE
) -> alt.HConcatChart:
    """ELU next to ReLU and Leaky ReLU, with a slider for ELU's alpha from 0.1 to 2.0 (TO-DO 1.2).

    Parameters
    ----------
    z : array-like of float, optional
        Pre-activation values to draw; default 201 points from -5 to 5.
    leaky_alpha : float, default 0.01
        Leaky ReLU's fixed slope for z <= 0.
    alpha : float, default 1.0
        The slider's starting value, within [0.1, 2.0].
    language : str, default "en"
        Language of the titles and labels (``experiments.charts.i18n``).

    Returns
    -------
    altair.HConcatChart
        Values and derivatives. The curves are computed in the browser from the param ``alpha``
        (``ELU_EXPRESSION``), so the slider works with no kernel; the y axes stay fixed while
        the slider moves, and a dotted line marks ELU's lower bound -alpha.
    """
    grid = _z_grid(z)
    _check_explorer_alphas(leaky_alpha, alpha)
    _ = translator(language)
    alpha_param = alt.param(
        name="alpha",
        value=float(alpha),
        bind=alt.binding_range(min=ELU_ALPHA_MIN, max=ELU_ALPHA_MAX, step=ELU_ALPHA_STEP, name=_("ELU alpha: ")),
    )
    leaky = float(leaky_alpha)
    names = {"elu": "ELU", "relu": "ReLU", "leaky_relu": f"Leaky ReLU (α={number(leaky, language)})"}
    folded = _explorer_curves(names, leaky)
    color = alt.Color("function:N", title=_("function"), sort=list(names.values()),
                      scale=alt.Scale(domain=list(names.values()), range=["#d62728", "#2ca02c", "#ff7f0e"]))
    x = alt.X("z:Q", title=_("pre-activation z"), scale=alt.Scale(domain=[float(grid[0]), float(grid[-1])], nice=False))

    # Fixed y ranges: the widest any alpha on the slider can reach, so the axes do not jump.
    z_low = min(float(grid[0]), 0.0)
    value_domain = [min(ELU_ALPHA_MAX * math.expm1(z_low), leaky * z_low), max(float(grid[-1]), 1.0)]
    derivative_domain = [min(0.0, leaky), max(ELU_ALPHA_MAX, 1.0, leaky)]

    values = (
        folded("", "value")
        .mark_line(strokeWidth=2.5)
        .encode(
            x=x,
            y=alt.Y("value:Q", title="f(z)", scale=alt.Scale(domain=value_domain, nice=False)),
            color=color,
            tooltip=[alt.Tooltip("function:N", title=_("function")), alt.Tooltip("z:Q", format=".3f"),
                     alt.Tooltip("value:Q", title="f(z)", format=".4f")],
        )
    )
    lower_bound = _elu_lower_bound(_("ELU lower bound −α"))
    derivatives = (
        folded("_derivative", "derivative")
        .mark_line(strokeWidth=2.5, strokeDash=[6, 3])
        .encode(
            x=x,
            y=alt.Y("derivative:Q", title="f′(z)", scale=alt.Scale(domain=derivative_domain, nice=False)),
            color=color,
            tooltip=[alt.Tooltip("function:N", title=_("function")), alt.Tooltip("z:Q", format=".3f"),
                     alt.Tooltip("derivative:Q", title="f′(z)", format=".4f")],
        )
    )
    data = inline_data(pd.DataFrame({"z": grid}))
    return (
        alt.hconcat(
            alt.layer(values, lower_bound).properties(title=_("Activation f(z)"), width=280, height=240),
            derivatives.properties(title=_("Derivative f′(z)"), width=280, height=240),
            data=data,
        )
        .add_params(alpha_param)
        .properties(title=title_expression(_("ELU with α = {alpha} vs ReLU and Leaky ReLU"), alpha="format(alpha, '.2f')"))
    )
