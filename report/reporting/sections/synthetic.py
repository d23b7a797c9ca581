"""Serves report/_05-synthetic.qmd: CustomANN on the synthetic 4-class task (TO-DO 3.2), from the ``synthetic`` run."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from experiments.charts.synthetic import decision_regions as decision_regions_chart
from experiments.charts.training import training_curves
from reporting.display import Outputs
from reporting.i18n import _, chart_language
from reporting.section import Section
from reporting.training_tables import final_metrics_frame, percent
from reporting.store import Store, StoredRun

SECTION = Section("synthetic")


def status() -> Markdown:
    """Which run the synthetic results come from, or the command that produces it."""
    return SECTION.status()


@SECTION.output
def summary(store: Store, run: StoredRun) -> Markdown:
    """Final metrics of the synthetic run."""
    return SECTION.table(final_metrics_frame(run), _("Synthetic task: final metrics"), [run], "synthetic-summary")


@SECTION.output
def loss_curve(store: Store, run: StoredRun) -> Outputs:
    """Loss and accuracy per epoch."""
    history = store.load_csv(run, "history.csv")
    chart = training_curves(history, language=chart_language())
    return SECTION.chart(chart, "synthetic-curves", _("Synthetic task: training curves"), [run])


@SECTION.output
def decision_regions(store: Store, run: StoredRun) -> Outputs:
    """The trained network's decision over the plane, with every point."""
    grid = store.load_csv(run, "decision_grid.csv")
    points = store.load_csv(run, "predictions.csv")
    chart = decision_regions_chart(grid, points, language=chart_language())
    return SECTION.chart(chart, "synthetic-regions", _("Synthetic task: decision regions"), [run])


def prediction_frame(points: pd.DataFrame) -> pd.DataFrame:
    """Per split and true class: points, correctly predicted, accuracy and mean confidence."""
    points = points.assign(
        correct=points["label"] == points["predicted"],
        split=points["split"] if "split" in points else _("all"),
    )
    rows = []
    for (split, label), group in points.groupby(["split", "label"]):
        rows.append(
            {
                _("split"): _(split),
                _("class"): str(label),
                _("points"): str(len(group)),
                _("correct"): str(int(group["correct"].sum())),
                _("accuracy"): percent(group["correct"].mean(), 1),
                _("mean confidence"): f"{group['confidence'].mean():.3f}",
            }
        )
    return pd.DataFrame(rows)


@SECTION.output
def predictions(store: Store, run: StoredRun) -> Markdown:
    """The final predictions, summarised per split and class."""
    points = store.load_csv(run, "predictions.csv")
    return SECTION.table(prediction_frame(points), _("Synthetic task: final predictions per class"), [run], "synthetic-predictions")
