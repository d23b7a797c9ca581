"""Sentences about the depth and activation studies, computed from their tables.

Each function takes the study's logged tables (``summary.csv``, ``results.csv``,
``grad_norms.csv``) and returns Markdown whose every claim ("X converged fastest", "N times
smaller") is decided by the numbers, so the report's analysis cannot contradict its data.
"""

from __future__ import annotations

import math

import pandas as pd

from reporting.training_tables import percent

DISPLAY_NAMES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "ELU", "leaky_relu": "Leaky ReLU"}


def display_name(arm: str) -> str:
    """How an arm is written in prose: ``relu`` -> ``ReLU``; other names unchanged."""
    return DISPLAY_NAMES.get(arm, arm)


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{what} has no rows")


def _seeds_note(summary: pd.DataFrame) -> str:
    n = int(summary["n_seeds"].max()) if "n_seeds" in summary else 1
    return f"mean over {n} seeds" if n > 1 else "one seed"


def accuracy_sentence(summary: pd.DataFrame) -> str:
    """Which arm reached the highest and which the lowest mean final test accuracy.

    With several seeds, also whether the gap exceeds the seeds' spread (sum of the two stds).
    """
    _require(summary, ["arm", "mean_final_test_acc"], "summary")
    ranked = summary.sort_values("mean_final_test_acc", ascending=False, kind="stable")
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    text = (
        f"**{display_name(best['arm'])}** reached the highest test accuracy, "
        f"{percent(best['mean_final_test_acc'])} ({_seeds_note(summary)})"
    )
    if len(ranked) == 1:
        return text + "."
    text += f"; **{display_name(worst['arm'])}** the lowest, {percent(worst['mean_final_test_acc'])}."
    gap = best["mean_final_test_acc"] - worst["mean_final_test_acc"]
    if "std_final_test_acc" in summary and summary.get("n_seeds", pd.Series([1])).max() > 1:
        spread = best["std_final_test_acc"] + worst["std_final_test_acc"]
        relation = "larger" if gap > spread else "no larger"
        text += (
            f" The gap, {100 * gap:.2f} percentage points, is {relation} than the seed-to-seed "
            f"spread (±{100 * best['std_final_test_acc']:.2f} and ±{100 * worst['std_final_test_acc']:.2f})."
        )
    return text


def time_sentence(summary: pd.DataFrame) -> str:
    """Which arm trained fastest and which slowest (mean training time)."""
    _require(summary, ["arm", "mean_train_time_s"], "summary")
    ranked = summary.sort_values("mean_train_time_s", kind="stable")
    fast, slow = ranked.iloc[0], ranked.iloc[-1]
    if len(ranked) == 1:
        return f"Training took {fast['mean_train_time_s']:.1f} s."
    return (
        f"**{display_name(fast['arm'])}** trained fastest ({fast['mean_train_time_s']:.1f} s), "
        f"**{display_name(slow['arm'])}** slowest ({slow['mean_train_time_s']:.1f} s)."
    )


def parameters_sentence(summary: pd.DataFrame) -> str:
    """Whether the most accurate arm is also the one with the most parameters."""
    _require(summary, ["arm", "parameter_count", "mean_final_test_acc"], "summary")
    most = summary.loc[summary["parameter_count"].idxmax()]
    best = summary.loc[summary["mean_final_test_acc"].idxmax()]
    if most["arm"] == best["arm"]:
        return (
            f"The most accurate arm is also the largest ({int(most['parameter_count']):,} parameters)."
        )
    return (
        f"The most accurate arm is not the largest: **{display_name(most['arm'])}** has the most "
        f"parameters ({int(most['parameter_count']):,}) against {int(best['parameter_count']):,} "
        f"for **{display_name(best['arm'])}**."
    )


def convergence_sentence(summary: pd.DataFrame, target: float | None, epochs: int | None) -> str:
    """Which activation converged fastest: fewest epochs to reach ``target`` test accuracy.

    Arms that never reached it (NaN) come last; ties are broken by final test accuracy.
    """
    _require(summary, ["arm", "mean_epochs_to_target", "mean_final_test_acc"], "summary")
    goal = f"the target test accuracy of {percent(target, 0)}" if target is not None else "the target accuracy"
    within = f" within {epochs} epochs" if epochs else ""
    reached = summary[summary["mean_epochs_to_target"].notna()]
    missed = [display_name(a) for a in summary.loc[summary["mean_epochs_to_target"].isna(), "arm"]]
    if reached.empty:
        return f"No activation reached {goal}{within}, so convergence speed cannot be ranked by it."
    ranked = reached.sort_values(
        ["mean_epochs_to_target", "mean_final_test_acc"], ascending=[True, False], kind="stable"
    )
    first = ranked.iloc[0]
    ties = ranked[ranked["mean_epochs_to_target"] == first["mean_epochs_to_target"]]
    n = first["mean_epochs_to_target"]
    epochs_text = f"{n:g} epoch{'s' if n != 1 else ''}"
    if len(ties) > 1:
        names = ", ".join(f"**{display_name(a)}**" for a in ties["arm"])
        text = (
            f"{names} converged equally fast, reaching {goal} after {epochs_text}; among them "
            f"**{display_name(first['arm'])}** ended with the highest test accuracy."
        )
    else:
        text = f"**{display_name(first['arm'])}** converged fastest: it reached {goal} after {epochs_text}"
        rest = ranked.iloc[1:]
        if not rest.empty:
            text += " (" + ", ".join(
                f"{display_name(r['arm'])} {r['mean_epochs_to_target']:g}" for _, r in rest.iterrows()
            ) + ")"
        text += "."
    if missed:
        text += f" {', '.join(missed)} never reached it{within}."
    return text


def first_layer_norms(grad_norms: pd.DataFrame, layer: str = "layer1") -> pd.Series:
    """Mean weight-gradient norm of ``layer`` per arm, over all epochs and seeds."""
    _require(grad_norms, ["arm", "layer", "grad_norm"], "grad_norms")
    rows = grad_norms[grad_norms["layer"] == layer]
    if rows.empty:
        raise ValueError(f"grad_norms has no rows for {layer!r}; layers: {sorted(grad_norms['layer'].unique())}")
    return rows.groupby("arm", sort=False)["grad_norm"].mean()


def gradient_sentence(grad_norms: pd.DataFrame, slow: str = "sigmoid", fast: str = "relu") -> str:
    """"First-layer gradient norms under ``slow`` are N times smaller (or larger) than under ``fast``."""
    norms = first_layer_norms(grad_norms)
    if slow not in norms or fast not in norms:
        return f"The gradient comparison needs both {display_name(slow)} and {display_name(fast)} arms."
    a, b = float(norms[slow]), float(norms[fast])
    if a <= 0 or b <= 0 or math.isnan(a) or math.isnan(b):
        return f"The first-layer gradient norms ({a:.3g} and {b:.3g}) cannot be compared as a ratio."
    if a < b:
        relation = f"{b / a:.1f} times smaller than"
    elif a > b:
        relation = f"{a / b:.1f} times larger than"
    else:
        relation = "equal to"
    return (
        f"The first layer's weight-gradient norm under **{display_name(slow)}** averages {a:.3g}, "
        f"{relation} under **{display_name(fast)}** ({b:.3g}; mean over epochs and seeds)."
    )


def theory_agreement_sentence(grad_norms: pd.DataFrame, slow: str = "sigmoid", fast: str = "relu") -> str:
    """Whether the measured first-layer norms agree with the vanishing-gradient argument."""
    norms = first_layer_norms(grad_norms)
    if slow not in norms or fast not in norms:
        return ""
    if norms[slow] < norms[fast]:
        return (
            f"This is what the theory predicts: $\\sigma'(z) \\le 1/4$ shrinks the gradient at every "
            f"{display_name(slow)} layer on its way back, while ReLU passes it through unchanged where it is active."
        )
    return (
        f"This run does not show the shrinkage the theory predicts for {display_name(slow)}; with "
        f"few layers, few epochs or a small dataset the effect can be hidden by other factors."
    )
