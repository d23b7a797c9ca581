"""Serves report/_08-activation-study.qmd: the activation study (TO-DO 4.2).

A parent run with one child per activation and seed; tables name the child runs, charts the
parent, and the analysis sentences come from :mod:`reporting.study_findings`.
"""

from __future__ import annotations

from IPython.display import Markdown

from experiments.charts.comparison import arm_comparison, grad_norm_curves
from experiments.charts.training import training_curves
from reporting import study_findings
from reporting.display import Outputs
from reporting.i18n import _, chart_language
from reporting.section import Section
from reporting.store import Store, StoredRun
from reporting.study_tables import display_arms, summary_frame
from reporting.training_tables import percent

ACTIVATION_STUDY = Section("activation_study")


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
    caption = _("Activation study: one row per activation function")
    if target is not None:
        caption += " " + _("(target test accuracy {target})").format(target=percent(target, 0))
    return ACTIVATION_STUDY.table(frame, caption, [run], "activation-study")


@ACTIVATION_STUDY.output
def activation_curves(store: Store, run: StoredRun) -> Outputs:
    """Loss and accuracy per epoch for every activation (mean over seeds)."""
    curves = store.load_csv(run, "curves.csv")
    return ACTIVATION_STUDY.chart(
        training_curves(display_arms(curves), color="arm", language=chart_language(), color_title="activation"),
        "activation-study-curves",
        _("Activation study: training curves"),
        [run],
    )


@ACTIVATION_STUDY.output
def activation_chart(store: Store, run: StoredRun) -> Outputs:
    """Mean test accuracy per activation, with error bars when several seeds ran."""
    summary = store.load_csv(run, "summary.csv")
    chart = arm_comparison(
        display_arms(summary), "final_test_acc", _("Test accuracy by activation"), language=chart_language(),
        arm_title="activation",
    )
    return ACTIVATION_STUDY.chart(chart, "activation-study-comparison", _("Activation study: test accuracy"), [run])


@ACTIVATION_STUDY.output
def gradient_norms(store: Store, run: StoredRun) -> Outputs:
    """Per-layer weight-gradient norms per epoch, one panel per layer."""
    norms = store.load_csv(run, "grad_norms.csv")
    return ACTIVATION_STUDY.chart(
        grad_norm_curves(display_arms(norms), language=chart_language(), arm_title="activation"),
        "activation-study-gradients",
        _("Activation study: gradient norms per layer"),
        [run],
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
