"""Experiment ``activation_study`` (TO-DO 4.2): ReLU, Sigmoid, Tanh, ELU and Leaky ReLU on 784-128-64-10.

Each child logs, per epoch, the mean L2 norm of every linear layer's weight gradient
(``grad_norm/layerN``, layer 1 nearest the input), the evidence for the vanishing-gradient
explanation: with sigmoid the early layers' gradients are much smaller. ``epochs_to_target``
is the first epoch whose test accuracy reaches the param ``target_accuracy``; it is not
logged (and is NaN in ``results.csv``) when the target is never reached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.tracking import artifacts, runs
from experiments.settings import Outcome
from experiments.settings import RunSettings
from experiments.tracking.arm_runs import Arm, run_study

NEEDS_FASHION_MNIST = True
EPOCHS = 5
LAYER_SIZES = (784, 128, 64, 10)
ARMS = tuple(Arm(name, LAYER_SIZES, name) for name in ("relu", "sigmoid", "tanh", "elu", "leaky_relu"))
HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s", "samples_per_sec"]


def epochs_to_target(test_acc: pd.Series, target: float) -> float:
    """The first (1-based) epoch whose test accuracy is >= ``target``; NaN if none is."""
    reached = np.flatnonzero(np.asarray(test_acc, dtype=float) >= target)
    return float(reached[0] + 1) if len(reached) else float("nan")


def grad_norm_table(history: pd.DataFrame) -> pd.DataFrame:
    """Long format of the history's ``grad_norm/layerN`` columns: ``epoch``, ``layer``, ``grad_norm``."""
    columns = [c for c in history.columns if c.startswith("grad_norm/")]
    long = history.melt(id_vars="epoch", value_vars=columns, var_name="layer", value_name="grad_norm")
    long["layer"] = long["layer"].str.removeprefix("grad_norm/")
    return long


def run(settings: RunSettings) -> Outcome:
    """Train every activation once per seed; log curves, gradient norms and epochs to target."""
    from experiments.charts.comparison import arm_comparison, grad_norm_curves
    from experiments.charts.training import training_curves

    target = settings.target_accuracy

    def child(arm: Arm, seed: int, result) -> dict[str, float]:
        epochs = epochs_to_target(result.history["test_acc"], target)
        runs.log_metrics({"epochs_to_target": epochs})
        artifacts.log_csv(grad_norm_table(result.history), "grad_norms.csv")
        return {"epochs_to_target": epochs}

    def parent(results: pd.DataFrame, summary: pd.DataFrame, histories: pd.DataFrame) -> None:
        import altair as alt

        curves = histories[["arm", "seed", *HISTORY_COLUMNS]]
        grad_norms = pd.concat(
            [grad_norm_table(h).assign(arm=arm, seed=seed) for (arm, seed), h in histories.groupby(["arm", "seed"], sort=False)],
            ignore_index=True,
        )[["arm", "seed", "epoch", "layer", "grad_norm"]]
        artifacts.log_csv(curves, "curves.csv")
        artifacts.log_csv(grad_norms, "grad_norms.csv")
        chart = alt.vconcat(
            training_curves(curves, color="arm"),
            alt.hconcat(arm_comparison(summary, "final_test_acc", "Test accuracy after training"), grad_norm_curves(grad_norms)),
        )
        artifacts.log_chart(chart, "comparison")

    return run_study(
        settings,
        "activation_study",
        ARMS,
        settings.epochs_or(EPOCHS),
        track_grad_norms=True,
        extra_metrics=("epochs_to_target",),
        extra_params={"target_accuracy": target},
        child_hook=child,
        parent_hook=parent,
    )
