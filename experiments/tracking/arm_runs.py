"""A comparison study: one parent run, one nested child run per arm and seed, and the aggregate.

Every child trains ``CustomANN(arm.layer_sizes, arm.activation)`` on FashionMNIST with the
same hyperparameters and is a complete training run (params, per-epoch metrics, finals,
``history.csv``). The parent logs ``results.csv`` (one row per child), ``summary.csv`` (one
row per arm) and, per arm and metric, ``<arm>/mean_<metric>`` and ``<arm>/std_<metric>``.

Standard deviations are population standard deviations over the seeds (``numpy.std`` with
``ddof=0``), so a single seed gives 0. NaN values (an ``epochs_to_target`` never reached) are
left out of the mean and standard deviation; ``n_seeds`` counts all seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from experiments.tracking import artifacts, datasets, runs
from experiments.settings import Outcome, RunSettings
from experiments.tracking.training import train_logged

if TYPE_CHECKING:
    from anncore.trainer import TrainResult

SUMMARY_METRICS = ("final_test_acc", "final_train_acc", "final_test_loss", "train_time_s")


@dataclass(frozen=True)
class Arm:
    """One arm of a study: a name, the layer sizes and the hidden activation."""

    name: str
    layer_sizes: tuple[int, ...]
    activation: str = "relu"

    @property
    def architecture(self) -> str:
        """Layer sizes as "784-128-64-10"."""
        return "-".join(map(str, self.layer_sizes))


# Called inside the child run after training: (arm, seed, train result) -> extra result columns.
ChildHook = Callable[[Arm, int, "TrainResult"], dict[str, float]]
# Called inside the parent run: (results, summary, histories with arm and seed columns).
ParentHook = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], None]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof=0) of the non-NaN ``values``; NaN, NaN if none."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if len(array) == 0:
        return float("nan"), float("nan")
    return float(np.mean(array)), float(np.std(array, ddof=0))


def summarize(results: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per arm (in first-seen order): ``arm``, ``architecture``, ``parameter_count``,
    ``n_seeds`` and ``mean_<metric>``, ``std_<metric>`` for every metric."""
    rows = []
    for arm, group in results.groupby("arm", sort=False):
        row = {
            "arm": arm,
            "architecture": group["architecture"].iloc[0],
            "parameter_count": int(group["parameter_count"].iloc[0]),
            "n_seeds": len(group),
        }
        for metric in metrics:
            row[f"mean_{metric}"], row[f"std_{metric}"] = mean_std(group[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def parent_metrics(summary: pd.DataFrame, metrics: Sequence[str]) -> dict[str, float]:
    """``<arm>/mean_<metric>`` and ``<arm>/std_<metric>`` for every arm and metric."""
    values = {}
    for _, row in summary.iterrows():
        for metric in metrics:
            for stat in ("mean", "std"):
                values[f"{row['arm']}/{stat}_{metric}"] = row[f"{stat}_{metric}"]
    return values


def train_child(
    settings: RunSettings,
    experiment: str,
    data: datasets.FashionMNIST,
    arm: Arm,
    config,
    extra_params: dict[str, object] | None,
    child_hook: ChildHook | None,
) -> tuple[dict[str, object], pd.DataFrame]:
    """Train one arm with one seed (``config.seed``) as a child run; its results row and history."""
    from anncore.models import CustomANN

    with runs.tracked_run(settings, experiment, role="child", arm=arm.name, seed=config.seed) as child:
        datasets.log_input(data)
        result = train_logged(
            lambda: CustomANN(arm.layer_sizes, activation=arm.activation),
            data.train,
            data.test,
            config,
            dataset_params=data.params(),
            extra_params={"arm": arm.name, **(extra_params or {})},
        )
        extra = child_hook(arm, config.seed, result) if child_hook else {}
    history = result.history
    row = {
        "arm": arm.name,
        "architecture": arm.architecture,
        "activation": arm.activation,
        "parameter_count": result.model.count_parameters(),
        "seed": config.seed,
        "train_time_s": float(history["epoch_time_s"].sum()),
        "final_test_acc": float(history["test_acc"].iloc[-1]),
        "final_train_acc": float(history["train_acc"].iloc[-1]),
        "final_test_loss": float(history["test_loss"].iloc[-1]),
        **extra,
        "run_id": child.info.run_id,
    }
    return row, history


def log_aggregate(
    results: pd.DataFrame, metrics: Sequence[str], histories: pd.DataFrame, parent_hook: ParentHook | None
) -> pd.DataFrame:
    """In the parent run: the per-arm summary as metrics, ``results.csv``, ``summary.csv`` and the hook's artifacts."""
    summary = summarize(results, metrics)
    runs.log_metrics(parent_metrics(summary, metrics))
    artifacts.log_csv(results, "results.csv")
    artifacts.log_csv(summary, "summary.csv")
    if parent_hook:
        parent_hook(results, summary, histories)
    return summary


def run_study(
    settings: RunSettings,
    experiment: str,
    arms: Sequence[Arm],
    epochs: int,
    *,
    track_grad_norms: bool = False,
    extra_metrics: Sequence[str] = (),
    extra_params: dict[str, object] | None = None,
    child_hook: ChildHook | None = None,
    parent_hook: ParentHook | None = None,
) -> Outcome:
    """Run every arm once per seed as children of one parent run; log the aggregate on the parent.

    Parameters
    ----------
    settings : RunSettings
        Seeds, device, quick; ``settings.provenance.arms`` restricts the arms (rerun of one child).
    experiment : str
        Experiment name, e.g. ``"depth"``.
    arms : sequence of Arm
    epochs : int
    track_grad_norms : bool
        Log ``grad_norm/layerN`` per epoch in the children.
    extra_metrics : sequence of str
        Result columns from ``child_hook`` that are summarised too.
    extra_params : dict, optional
        More params for the parent and the children.
    child_hook, parent_hook : callable, optional
        Add child results/artifacts, and parent artifacts such as charts.

    Returns
    -------
    Outcome
        The parent run and the best arm's mean final test accuracy.
    """
    data = datasets.load(settings)
    wanted = settings.provenance.arms
    selected = [arm for arm in arms if wanted is None or arm.name in wanted]
    if not selected:
        raise ValueError(f"no arm of {experiment} is named {wanted}; accepted: {[a.name for a in arms]}")
    metrics = (*SUMMARY_METRICS, *extra_metrics)
    base = settings.train_config(epochs=epochs, track_grad_norms=track_grad_norms)
    parent_params = {
        **base.hyperparameters(),
        "arms": ";".join(f"{arm.name}={arm.architecture}/{arm.activation}" for arm in selected),
        "std_ddof": 0,
        **data.params(),
        **(extra_params or {}),
    }
    with runs.tracked_run(settings, experiment, role="parent", params=parent_params) as parent:
        rows, histories = [], []
        for arm in selected:
            for seed in settings.seeds:
                row, history = train_child(settings, experiment, data, arm, dataclasses.replace(base, seed=seed),
                                           extra_params, child_hook)
                rows.append(row)
                histories.append(history.assign(arm=arm.name, seed=seed))
        summary = log_aggregate(pd.DataFrame(rows), metrics, pd.concat(histories, ignore_index=True), parent_hook)
    best = summary.loc[summary["mean_final_test_acc"].idxmax()]
    return Outcome(parent.info.run_id, f"{best['arm']} mean_final_test_acc", float(best["mean_final_test_acc"]))
