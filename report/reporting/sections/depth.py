"""Serves report/_07-depth.qmd: the depth study (TO-DO 4.1).

A parent run with one child per arm and seed; tables name the child runs, charts the parent,
and the analysis sentences come from :mod:`reporting.study_findings`.
"""

from __future__ import annotations

from IPython.display import Markdown

from experiments.charts.comparison import arm_comparison
from experiments.charts.training import training_curves
from reporting import study_findings
from reporting.display import Outputs
from reporting.i18n import _, chart_language
from reporting.section import Section
from reporting.store import Store, StoredRun
from reporting.study_tables import display_arms, histories as _histories, summary_frame

DEPTH = Section("depth")


def depth_status() -> Markdown:
    """Which run the depth study comes from, or the command that produces it."""
    return DEPTH.status()


@DEPTH.output
def depth_table(store: Store, run: StoredRun) -> Markdown:
    """Training time, accuracy and parameter count per architecture."""
    summary, results = store.load_csv(run, "summary.csv"), store.load_csv(run, "results.csv")
    return DEPTH.table(summary_frame(summary, results), _("Depth study: one row per architecture"), [run], "depth")


@DEPTH.output
def depth_chart(store: Store, run: StoredRun) -> Outputs:
    """Mean test accuracy per architecture, with ±1 std error bars when several seeds ran."""
    summary = store.load_csv(run, "summary.csv")
    chart = arm_comparison(
        display_arms(summary), "final_test_acc", _("Test accuracy by depth"), language=chart_language(),
        arm_title="architecture",
    )
    return DEPTH.chart(chart, "depth-comparison", _("Depth study: test accuracy per architecture"), [run])


@DEPTH.output
def depth_curves(store: Store, run: StoredRun) -> Outputs:
    """Training curves of every architecture (mean over seeds), from the child runs."""
    results = store.load_csv(run, "results.csv")
    history = _histories(store, run, results)
    children = [store.run_by_id(run.name, run_id) for run_id in results["run_id"]]
    return DEPTH.chart(
        training_curves(display_arms(history), color="arm", language=chart_language(), color_title="architecture"),
        "depth-curves",
        _("Depth study: training curves"),
        [run, *children],
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
    return Markdown(DEPTH.findings_lead_in() + " ".join(sentences) + " " + DEPTH.source_line([run]) + "\n")
