"""Sentences about the depth and activation studies, computed from their tables.

Each function takes the study's logged tables (``summary.csv``, ``results.csv``,
``grad_norms.csv``) and returns Markdown whose every claim ("X converged fastest", "N times
smaller") is decided by the numbers, so the report's analysis cannot contradict its data.
"""

from __future__ import annotations

import math

import pandas as pd

from reporting.i18n import N_, _, integer, ngettext
from reporting.training_tables import percent

DISPLAY_NAMES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "ELU", "leaky_relu": "Leaky ReLU"}
# The depth study's arms, words that a Russian sentence must not leave in English.
DISPLAY_NAMES |= {"shallow": N_("shallow"), "medium": N_("medium"), "deep": N_("deep")}


def display_name(arm: str) -> str:
    """How an arm is written in prose, tables and charts: ``relu`` -> ``ReLU``, ``deep`` -> ``deep``
    (``глубокая`` in Russian); other names unchanged."""
    return _(DISPLAY_NAMES[arm]) if arm in DISPLAY_NAMES else arm


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
    return ngettext("mean over {n} seed", "mean over {n} seeds", n).format(n=n) if n > 1 else _("one seed")


def accuracy_sentence(summary: pd.DataFrame) -> str:
    """Which arm reached the highest and which the lowest mean final test accuracy.

    With several seeds, also whether the gap exceeds the seeds' spread (sum of the two stds).
    """
    _require(summary, ["arm", "mean_final_test_acc"], "summary")
    ranked = summary.sort_values("mean_final_test_acc", ascending=False, kind="stable")
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    text = _("**{best}** reached the highest test accuracy, {accuracy} ({seeds})").format(
        best=display_name(best["arm"]), accuracy=percent(best["mean_final_test_acc"]), seeds=_seeds_note(summary)
    )
    if len(ranked) == 1:
        return text + "."
    text += _("; **{worst}** the lowest, {accuracy}.").format(
        worst=display_name(worst["arm"]), accuracy=percent(worst["mean_final_test_acc"])
    )
    gap = best["mean_final_test_acc"] - worst["mean_final_test_acc"]
    if "std_final_test_acc" in summary and summary.get("n_seeds", pd.Series([1])).max() > 1:
        spread = best["std_final_test_acc"] + worst["std_final_test_acc"]
        sentence = (
            _("The gap, {gap} percentage points, is larger than the seed-to-seed spread (±{best} and ±{worst}).")
            if gap > spread
            else _("The gap, {gap} percentage points, is no larger than the seed-to-seed spread (±{best} and ±{worst}).")
        )
        text += " " + sentence.format(
            gap=f"{100 * gap:.2f}",
            best=f"{100 * best['std_final_test_acc']:.2f}",
            worst=f"{100 * worst['std_final_test_acc']:.2f}",
        )
    return text


def time_sentence(summary: pd.DataFrame) -> str:
    """Which arm trained fastest and which slowest (mean training time)."""
    _require(summary, ["arm", "mean_train_time_s"], "summary")
    ranked = summary.sort_values("mean_train_time_s", kind="stable")
    fast, slow = ranked.iloc[0], ranked.iloc[-1]
    if len(ranked) == 1:
        return _("Training took {seconds} s.").format(seconds=f"{fast['mean_train_time_s']:.1f}")
    return _("**{fast}** trained fastest ({fast_seconds} s), **{slow}** slowest ({slow_seconds} s).").format(
        fast=display_name(fast["arm"]),
        fast_seconds=f"{fast['mean_train_time_s']:.1f}",
        slow=display_name(slow["arm"]),
        slow_seconds=f"{slow['mean_train_time_s']:.1f}",
    )


def parameters_sentence(summary: pd.DataFrame) -> str:
    """Whether the most accurate arm is also the one with the most parameters."""
    _require(summary, ["arm", "parameter_count", "mean_final_test_acc"], "summary")
    most = summary.loc[summary["parameter_count"].idxmax()]
    best = summary.loc[summary["mean_final_test_acc"].idxmax()]
    if most["arm"] == best["arm"]:
        return _("The most accurate arm is also the largest ({count} parameters).").format(
            count=integer(most["parameter_count"])
        )
    return _(
        "The most accurate arm is not the largest: **{largest}** has the most parameters ({count}) "
        "against {best_count} for **{best}**."
    ).format(
        largest=display_name(most["arm"]),
        count=integer(most["parameter_count"]),
        best_count=integer(best["parameter_count"]),
        best=display_name(best["arm"]),
    )


def convergence_sentence(summary: pd.DataFrame, target: float | None, epochs: int | None) -> str:
    """Which activation converged fastest: fewest epochs to reach ``target`` test accuracy.

    Arms that never reached it (NaN) come last; ties are broken by final test accuracy.
    """
    _require(summary, ["arm", "mean_epochs_to_target", "mean_final_test_acc"], "summary")
    goal = (
        _("the target test accuracy of {target}").format(target=percent(target, 0))
        if target is not None
        else _("the target accuracy")
    )
    within = " " + ngettext("within {n} epoch", "within {n} epochs", epochs).format(n=epochs) if epochs else ""
    reached = summary[summary["mean_epochs_to_target"].notna()]
    missed = [display_name(a) for a in summary.loc[summary["mean_epochs_to_target"].isna(), "arm"]]
    if reached.empty:
        return _("No activation reached {goal}{within}, so convergence speed cannot be ranked by it.").format(
            goal=goal, within=within
        )
    ranked = reached.sort_values(
        ["mean_epochs_to_target", "mean_final_test_acc"], ascending=[True, False], kind="stable"
    )
    first = ranked.iloc[0]
    ties = ranked[ranked["mean_epochs_to_target"] == first["mean_epochs_to_target"]]
    n = first["mean_epochs_to_target"]
    after = ngettext("after {n} epoch", "after {n} epochs", n).format(n=f"{n:g}")
    if len(ties) > 1:
        names = ", ".join(f"**{display_name(a)}**" for a in ties["arm"])
        text = _(
            "{names} converged equally fast, reaching {goal} {after}; among them "
            "**{best}** ended with the highest test accuracy."
        ).format(names=names, goal=goal, after=after, best=display_name(first["arm"]))
    else:
        text = _("**{first}** converged fastest: it reached {goal} {after}").format(
            first=display_name(first["arm"]), goal=goal, after=after
        )
        rest = ranked.iloc[1:]
        if not rest.empty:
            text += " (" + ", ".join(
                f"{display_name(r['arm'])} {r['mean_epochs_to_target']:g}" for _index, r in rest.iterrows()
            ) + ")"
        text += "."
    if missed:
        text += " " + ngettext("{names} never reached it{within}.", "{names} never reached it{within}.", len(missed)).format(
            names=", ".join(missed), within=within
        )
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
        return _("The gradient comparison needs both {slow} and {fast} arms.").format(
            slow=display_name(slow), fast=display_name(fast)
        )
    a, b = float(norms[slow]), float(norms[fast])
    if a <= 0 or b <= 0 or math.isnan(a) or math.isnan(b):
        return _("The first-layer gradient norms ({a} and {b}) cannot be compared as a ratio.").format(
            a=f"{a:.3g}", b=f"{b:.3g}"
        )
    ratio = max(a, b) / min(a, b)
    if f"{ratio:.1f}" == "1.0":  # "1.0 times larger" says nothing
        relation = _("about the same as")
    elif a < b:
        relation = _("{ratio} times smaller than").format(ratio=f"{ratio:.1f}")
    else:
        relation = _("{ratio} times larger than").format(ratio=f"{ratio:.1f}")
    return _(
        "The first layer's weight-gradient norm under **{slow}** averages {a}, {relation} under "
        "**{fast}** ({b}; mean over epochs and seeds)."
    ).format(slow=display_name(slow), a=f"{a:.3g}", relation=relation, fast=display_name(fast), b=f"{b:.3g}")


def theory_agreement_sentence(grad_norms: pd.DataFrame, slow: str = "sigmoid", fast: str = "relu") -> str:
    """Whether the measured first-layer norms agree with the vanishing-gradient argument."""
    norms = first_layer_norms(grad_norms)
    if slow not in norms or fast not in norms:
        return ""
    if norms[slow] < norms[fast]:
        return _(
            "This is what the theory predicts: $\\sigma'(z) \\le 1/4$ shrinks the gradient at every "
            "{slow} layer on its way back, while ReLU passes it through unchanged where it is active."
        ).format(slow=display_name(slow))
    return _(
        "This run does not show the shrinkage the theory predicts for {slow}; with few layers, few "
        "epochs or a small dataset the effect can be hidden by other factors."
    ).format(slow=display_name(slow))
