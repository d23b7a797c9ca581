"""Model-epochs per second of K baseline models trained as one stack, against one at a time.

A search trains many models of one shape. On a GPU one model at batch 128 leaves the device
mostly idle, so K of them stacked (``anncore.stacked.train_stacked``: batched matmuls, one Adam
step for all) take about the time of one. This measures it: ``anncore.trainer.train`` of one
baseline model (its captured step on CUDA), then stacks of K members with spread learning rates;
each the median epoch (training pass plus evaluation, as a search runs them) after a warm-up.
The benchmark runs it on CUDA only: on a 2-core CPU stacking gains nothing.
"""

from __future__ import annotations

import statistics

from experiments.benchmark.pipelines import BATCH_SIZE, BenchmarkSetup, _anncore_config, _build_model, load_tensors

STACK_SIZES: tuple[int, ...] = (1, 8, 32, 128)
QUICK_STACK_SIZES: tuple[int, ...] = (1, 8)
LEARNING_RATE_RANGE = (1e-4, 1e-2)  # members' rates, log-spaced: a search's spread


def _epoch_seconds(history) -> float:
    """Median training-pass-plus-evaluation seconds of the epochs after the first (warm-up)."""
    seconds = (history["epoch_time_s"] + history["eval_time_s"]).tolist()
    return statistics.median(seconds[1:] or seconds)


def learning_rates(k: int) -> list[float]:
    """``k`` learning rates log-spaced over ``LEARNING_RATE_RANGE``."""
    low, high = LEARNING_RATE_RANGE
    return [low * (high / low) ** (i / max(k - 1, 1)) for i in range(k)]


def measure_stacked(setup: BenchmarkSetup, sizes: tuple[int, ...] = STACK_SIZES) -> dict[str, object]:
    """Time one model alone and stacks of each size in ``sizes``; their model-epochs per second.

    Returns
    -------
    dict
        ``one_at_a_time`` and ``by_members`` (K -> figures): ``seconds_per_epoch`` and
        ``model_epochs_per_second`` (K / seconds per epoch); ``best_speedup`` (the best stack's
        model-epochs per second over one at a time), and what was trained.
    """
    from dataclasses import replace

    from anncore.stacked import train_stacked
    from anncore.trainer import train

    train_data, test_data = load_tensors(setup)
    config = replace(_anncore_config(setup), progress=False)
    alone = train(_build_model(setup.seed), train_data, test_data, config)
    one = _epoch_seconds(alone.history)
    by_members = {}
    for k in sizes:
        models = [_build_model(setup.seed + i) for i in range(k)]
        configs = [replace(config, learning_rate=lr) for lr in learning_rates(k)]
        result = train_stacked(models, train_data, test_data, configs)
        seconds = _epoch_seconds(result.histories[0])
        by_members[str(k)] = {"seconds_per_epoch": seconds, "model_epochs_per_second": k / seconds}
    best = max(v["model_epochs_per_second"] for v in by_members.values())
    return {
        "architecture": "784-512-256-128-10",
        "batch_size": BATCH_SIZE,
        "epochs": setup.epochs,
        "train_size": len(train_data),
        "one_at_a_time": {"seconds_per_epoch": one, "model_epochs_per_second": 1 / one},
        "by_members": by_members,
        "best_speedup": best * one,
    }


def stacked_metrics(stacked: dict[str, object]) -> dict[str, float]:
    """The MLflow metrics of :func:`measure_stacked`'s figures."""
    metrics = {"stacked/one_at_a_time/model_epochs_per_second": stacked["one_at_a_time"]["model_epochs_per_second"],
               "stacked/best_speedup": stacked["best_speedup"]}
    for k, figures in stacked["by_members"].items():
        metrics[f"stacked/K{k}/model_epochs_per_second"] = figures["model_epochs_per_second"]
    return metrics


def stacked_line(stacked: dict[str, object]) -> str:
    """One printed line: model-epochs per second by stack size, against one at a time."""
    sizes = ", ".join(f"K={k} {v['model_epochs_per_second']:.3g}" for k, v in stacked["by_members"].items())
    return (f"stacked training: {sizes} model-epochs/s against {stacked['one_at_a_time']['model_epochs_per_second']:.3g} "
            f"one at a time (best {stacked['best_speedup']:.1f}x)")
