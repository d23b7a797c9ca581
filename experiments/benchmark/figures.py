"""The benchmark's figures from its measured runs: medians, ratios, targets, environment.

Definitions are in ``experiments.benchmark.cli``'s docstring (what ``python -m experiments.benchmark`` prints).
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass

from experiments.benchmark.pipelines import DESCRIPTIONS, PIPELINES, BenchmarkSetup, PipelineRun

FULL_TRAIN_SIZE = 60_000  # FashionMNIST's training split, for the "per 60,000 images" figures
TARGETS: dict[str, tuple[str, float]] = {
    "notebook_over_anncore": (">=", 5.0),
    "anncore_over_floor": ("<=", 1.2),
    "anncore_mlflow_over_anncore": ("<=", 1.05),
}



@dataclass
class Measurement:
    """One run of one pipeline and the peak memory it added."""

    run: PipelineRun
    peak_memory_mib: float
    peak_rss_mib: float
    memory_method: str


def measure(setup: BenchmarkSetup, rounds: int) -> dict[str, list[Measurement]]:
    """Run every pipeline ``rounds`` times, alternating the order, each under :class:`PeakMemory`."""
    from experiments.benchmark.memory import PeakMemory
    from experiments.benchmark.pipelines import RUNNERS

    measurements: dict[str, list[Measurement]] = {name: [] for name in PIPELINES}
    for round_index in range(rounds):
        order = PIPELINES if round_index % 2 == 0 else PIPELINES[::-1]
        for name in order:
            print(f"round {round_index + 1}/{rounds}: {name}", flush=True)
            with PeakMemory(setup.device) as memory:
                run = RUNNERS[name](setup)
            measurements[name].append(Measurement(run, memory.added_mib, memory.peak_mib, memory.method))
    return measurements


def _median_after_warmup(series: list[list[float]]) -> float | None:
    measured = [value for values in series for value in values[1:]]
    return statistics.median(measured) if measured else None


def pipeline_figures(name: str, measurements: list[Measurement]) -> dict[str, object]:
    """Pipeline ``name``'s figures from its runs (see the module docstring)."""
    runs = [m.run for m in measurements]
    seconds = _median_after_warmup([run.epoch_seconds for run in runs])
    outside = [outside_epochs_seconds(run) for run in runs]
    samples = runs[0].samples_per_epoch
    return {
        "seconds_per_epoch": seconds,
        "samples_per_sec": samples / seconds,
        "samples_per_epoch": samples,
        "seconds_per_60000_images": FULL_TRAIN_SIZE / (samples / seconds),
        "eval_seconds_per_epoch": _median_after_warmup([run.eval_seconds for run in runs]),
        "run_seconds": statistics.median(run.run_seconds for run in runs),
        "peak_memory_mib": max(m.peak_memory_mib for m in measurements),
        "peak_rss_mib": max(m.peak_rss_mib for m in measurements),
        "peak_memory_method": measurements[0].memory_method,
        "optimizer": runs[0].optimizer,
        "description": DESCRIPTIONS[name],
        "outside_epochs_seconds": statistics.median(outside),
        "epoch_seconds": [run.epoch_seconds for run in runs],
        "eval_seconds": [run.eval_seconds for run in runs],
        "run_seconds_each": [run.run_seconds for run in runs],
        "outside_epochs_seconds_each": outside,
    }


def outside_epochs_seconds(run: PipelineRun) -> float:
    """The part of a run spent outside its epochs' training passes and evaluations.

    Set-up, the final evaluation and, for the MLflow pipeline, all its logging.
    """
    return run.run_seconds - sum(run.epoch_seconds) - sum(run.eval_seconds)


def logging_seconds_per_run(figures: dict[str, dict[str, object]]) -> float:
    """What MLflow adds to one run: the MLflow pipeline's time outside its epochs minus anncore's.

    Runs are paired by round (both lists are in round order); the median over rounds.
    """
    pairs = zip(figures["anncore_mlflow"]["outside_epochs_seconds_each"], figures["anncore"]["outside_epochs_seconds_each"])
    return statistics.median(logged - plain for logged, plain in pairs)


def ratios(figures: dict[str, dict[str, object]], logging_seconds: float) -> dict[str, float]:
    """The three target ratios, and two more without a target (see the module docstring).

    notebook / anncore and anncore / floor divide seconds per epoch (training pass);
    anncore_mlflow / anncore is 1 + ``logging_seconds`` (:func:`logging_seconds_per_run`) / anncore's run seconds;
    ``anncore_mlflow_over_anncore_whole_runs`` divides the two pipelines' median run seconds;
    ``notebook_over_anncore_with_eval`` divides training pass plus evaluation per epoch, which
    is what one epoch of the notebook's ``train_model`` does.
    """
    spe = {name: figures[name]["seconds_per_epoch"] for name in PIPELINES}
    with_eval = {name: spe[name] + figures[name]["eval_seconds_per_epoch"] for name in ("notebook", "anncore")}
    run_seconds = {name: figures[name]["run_seconds"] for name in ("anncore", "anncore_mlflow")}
    return {
        "notebook_over_anncore": spe["notebook"] / spe["anncore"],
        "anncore_over_floor": spe["anncore"] / spe["floor"],
        "anncore_mlflow_over_anncore": 1 + logging_seconds / run_seconds["anncore"],
        "anncore_mlflow_over_anncore_whole_runs": run_seconds["anncore_mlflow"] / run_seconds["anncore"],
        "notebook_over_anncore_with_eval": with_eval["notebook"] / with_eval["anncore"],
    }


def targets_met(measured: dict[str, float]) -> dict[str, dict[str, object]]:
    """Each ratio's target from the performance issue and whether this run met it."""
    met = {}
    for name, (relation, bound) in TARGETS.items():
        value = measured[name]
        met[name] = {"target": f"{relation} {bound:g}", "met": value >= bound if relation == ">=" else value <= bound}
    return met


def environment(device) -> dict[str, object]:
    """What the figures depend on: versions, threads, the device and the machine's load."""
    import mlflow
    import torch

    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "mlflow_version": mlflow.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
    }
