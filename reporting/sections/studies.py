"""Sections 7 and 8: the depth study (TO-DO 4.1) and the activation study (TO-DO 4.2).

Both are parent runs with one child per arm and seed; tables name the child runs, charts the
parent, and the analysis sentences come from :mod:`reporting.study_findings`.
"""

from __future__ import annotations

import math

import pandas as pd
from IPython.display import Markdown

from charts.comparison import arm_comparison, grad_norm_curves
from charts.training import training_curves
from reporting import study_findings
from reporting.display import Outputs
from reporting.section import Section
from reporting.store import Store, StoredRun
from reporting.training_tables import percent

DEPTH = Section("depth")
ACTIVATION_STUDY = Section("activation_study")


def _mean_std(row: pd.Series, metric: str, fmt) -> str:
    mean, std = row[f"mean_{metric}"], row.get(f"std_{metric}", math.nan)
    if row.get("n_seeds", 1) > 1 and not math.isnan(std):
        return f"{fmt(mean)} ± {fmt(std)}"
    return fmt(mean)


def summary_frame(summary: pd.DataFrame, results: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per arm: architecture, parameters, time, accuracies (mean ± std) and child runs."""
    rows = []
    for _, row in summary.iterrows():
        children = results[results["arm"] == row["arm"]]
        shown = {
            "arm": study_findings.display_name(row["arm"]),
            "architecture": str(row.get("architecture", "")),
            "parameters": f"{int(row['parameter_count']):,}",
            "seeds": str(int(row.get("n_seeds", len(children)))),
            "training time (s)": _mean_std(row, "train_time_s", lambda v: f"{v:.1f}"),
            "train accuracy": _mean_std(row, "final_train_acc", percent),
            "test accuracy": _mean_std(row, "final_test_acc", percent),
        }
        if "epochs_to_target" in extra:
            value = row.get("mean_epochs_to_target", math.nan)
            shown["epochs to target"] = "not reached" if pd.isna(value) else f"{value:g}"
        shown["child runs"] = " ".join(f"`{run_id[:8]}`" for run_id in children["run_id"])
        rows.append(shown)
    return pd.DataFrame(rows)


def _histories(store: Store, parent: StoredRun, results: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for _, row in results.iterrows():
        child = store.run_by_id(parent.name, row["run_id"])
        frames.append(store.load_csv(child, "history.csv").assign(arm=row["arm"], seed=row["seed"]))
    return pd.concat(frames, ignore_index=True)


# --- depth study (TO-DO 4.1) ---------------------------------------------------------------


def depth_status() -> Markdown:
    """Which run the depth study comes from, or the command that produces it."""
    return DEPTH.status()


@DEPTH.output
def depth_table(store: Store, run: StoredRun) -> Markdown:
    """Training time, accuracy and parameter count per architecture."""
    summary, results = store.load_csv(run, "summary.csv"), store.load_csv(run, "results.csv")
    return DEPTH.table(summary_frame(summary, results), "Depth study: one row per architecture", [run])


@DEPTH.output
def depth_chart(store: Store, run: StoredRun) -> Outputs:
    """Mean test accuracy per architecture, with ±1 std error bars when several seeds ran."""
    summary = store.load_csv(run, "summary.csv")
    chart = arm_comparison(summary, "final_test_acc", "Test accuracy by depth")
    return DEPTH.chart(chart, "depth-comparison", "Depth study: test accuracy per architecture", [run])


@DEPTH.output
def depth_curves(store: Store, run: StoredRun) -> Outputs:
    """Training curves of every architecture (mean over seeds), from the child runs."""
    results = store.load_csv(run, "results.csv")
    history = _histories(store, run, results)
    children = [store.run_by_id(run.name, run_id) for run_id in results["run_id"]]
    return DEPTH.chart(
        training_curves(history, color="arm"), "depth-curves", "Depth study: training curves", [run, *children]
    )


@DEPTH.output
def depth_findings(store: Store, run: StoredRun) -> Markdown:
    """The depth study's conclusions, each computed from summary.csv."""
    summary = store.load_csv(run, "summary.csv")
    sentences = [
        study_findings.accuracy_sentence(summary),
        study_findings.time_sentence(summary),
        study_findings.parameters_sentence(summary),
    ]
    return Markdown(" ".join(sentences) + " " + DEPTH.source_line([run]) + "\n")


# --- activation study (TO-DO 4.2) ----------------------------------------------------------


def activation_status() -> Markdown:
    """Which run the activation study comes from, or the command that produces it."""
    return ACTIVATION_STUDY.status()


def _target(run: StoredRun) -> float | None:
    value = run.params.get("target_accuracy")
    return float(value) if value not in (None, "") else None


@ACTIVATION_STUDY.output
def activation_table(store: Store, run: StoredRun) -> Markdown:
    """Per activation: time, accuracy, epochs to the target accuracy, child runs."""
    summary, results = store.load_csv(run, "summary.csv"), store.load_csv(run, "results.csv")
    frame = summary_frame(summary, results, extra=("epochs_to_target",))
    target = _target(run)
    caption = "Activation study: one row per activation function"
    if target is not None:
        caption += f" (target test accuracy {percent(target, 0)})"
    return ACTIVATION_STUDY.table(frame, caption, [run])


@ACTIVATION_STUDY.output
def activation_curves(store: Store, run: StoredRun) -> Outputs:
    """Loss and accuracy per epoch for every activation (mean over seeds)."""
    curves = store.load_csv(run, "curves.csv")
    return ACTIVATION_STUDY.chart(
        training_curves(curves, color="arm"), "activation-study-curves", "Activation study: training curves", [run]
    )


@ACTIVATION_STUDY.output
def activation_chart(store: Store, run: StoredRun) -> Outputs:
    """Mean test accuracy per activation, with error bars when several seeds ran."""
    summary = store.load_csv(run, "summary.csv")
    chart = arm_comparison(summary, "final_test_acc", "Test accuracy by activation")
    return ACTIVATION_STUDY.chart(chart, "activation-study-comparison", "Activation study: test accuracy", [run])


@ACTIVATION_STUDY.output
def gradient_norms(store: Store, run: StoredRun) -> Outputs:
    """Per-layer weight-gradient norms per epoch, one panel per layer."""
    norms = store.load_csv(run, "grad_norms.csv")
    return ACTIVATION_STUDY.chart(
        grad_norm_curves(norms), "activation-study-gradients", "Activation study: gradient norms per layer", [run]
    )


@ACTIVATION_STUDY.output
def activation_findings(store: Store, run: StoredRun) -> Markdown:
    """Convergence, accuracy and gradient statements, each computed from the run's tables."""
    summary = store.load_csv(run, "summary.csv")
    norms = store.load_csv(run, "grad_norms.csv")
    epochs = int(run.params["epochs"]) if run.params.get("epochs", "").isdigit() else None
    items = [
        study_findings.convergence_sentence(summary, _target(run), epochs),
        study_findings.accuracy_sentence(summary),
        study_findings.gradient_sentence(norms, "sigmoid", "relu"),
        study_findings.gradient_sentence(norms, "tanh", "relu"),
        study_findings.theory_agreement_sentence(norms, "sigmoid", "relu"),
    ]
    bullets = "\n".join(f"- {item}" for item in items if item)
    return Markdown(bullets + "\n\n" + ACTIVATION_STUDY.source_line([run]) + "\n")
