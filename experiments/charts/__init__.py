"""Altair charts for anncore's experiments and report, built from the MLflow artifact tables.

The builders take pandas DataFrames in the CSV layouts of docs/architecture.md and return
Altair charts; ``charts.export`` saves them as offline HTML, PNG or SVG. Nothing here knows
about MLflow.
"""

from experiments.charts.activation_charts import activation_comparison, activation_curves, elu_alpha_explorer
from experiments.charts.classes import confusion_matrix, per_class_accuracy
from experiments.charts.comparison import arm_comparison, grad_norm_curves
from experiments.charts.export import chart_html_fragment, inline_vega_scripts, save_html, save_png, to_png, to_svg
from experiments.charts.performance import pipeline_seconds
from experiments.charts.search import optimization_history, parameter_panels
from experiments.charts.synthetic import decision_regions
from experiments.charts.training import training_curves

__all__ = [
    "activation_comparison",
    "activation_curves",
    "arm_comparison",
    "chart_html_fragment",
    "confusion_matrix",
    "decision_regions",
    "elu_alpha_explorer",
    "grad_norm_curves",
    "inline_vega_scripts",
    "optimization_history",
    "parameter_panels",
    "per_class_accuracy",
    "pipeline_seconds",
    "save_html",
    "save_png",
    "to_png",
    "to_svg",
    "training_curves",
]
