"""Experiment ``depth`` (TO-DO 4.1): how depth changes accuracy, training time and parameter count.

Three arms with identical hyperparameters (Adam lr 1e-3, batch 128, 5 epochs, ReLU, no
dropout): shallow 784-256-10, medium 784-128-64-10, deep 784-128-64-32-16-10. The parent
run adds a comparison chart of mean test accuracy and training time per arm.
"""

from __future__ import annotations

from experiments.tracking import artifacts
from experiments.settings import Outcome
from experiments.settings import RunSettings
from experiments.tracking.arm_runs import Arm, run_study

NEEDS_FASHION_MNIST = True
EPOCHS = 5
ARMS = (
    Arm("shallow", (784, 256, 10)),
    Arm("medium", (784, 128, 64, 10)),
    Arm("deep", (784, 128, 64, 32, 16, 10)),
)


def log_comparison(results, summary, histories) -> None:
    """Log ``comparison.html``/``.png``: mean test accuracy and training time per arm, side by side."""
    import altair as alt

    from experiments.charts.comparison import arm_comparison

    chart = alt.hconcat(
        arm_comparison(summary, "final_test_acc", "Test accuracy after training"),
        arm_comparison(summary, "train_time_s", "Training time (s)"),
    )
    artifacts.log_chart(chart, "comparison")


def run(settings: RunSettings) -> Outcome:
    """Train every depth arm once per seed and log the comparison."""
    return run_study(settings, "depth", ARMS, settings.epochs_or(EPOCHS), parent_hook=log_comparison)
