"""The benchmark's captured floor and microseconds per step, checked on the CPU: the pipeline
exists only on CUDA, and its figures and ratio come out of runs of known cost. The pipeline
itself runs in tests/test_cuda.py (marked ``cuda``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.benchmark.figures import Measurement, pipeline_figures, ratios, targets_met
from experiments.benchmark.pipelines import PIPELINES, RUNNERS, BenchmarkSetup, PipelineRun, pipelines_for

FLOPS_PER_SAMPLE = 1_000_000


def stub(seconds_per_epoch: float, samples: int = 1280, steps: int | None = None) -> list[Measurement]:
    """One round of a pipeline whose epochs after the warm-up took ``seconds_per_epoch``."""
    run = PipelineRun([10.0, seconds_per_epoch, seconds_per_epoch], samples, 3 * seconds_per_epoch + 11.0,
                      [0.5, 0.5, 0.5], "Adam", steps_per_epoch=steps)
    return [Measurement(run, 1.0, 1.0, "stub")]


def test_the_captured_floor_is_timed_on_cuda_only() -> None:
    assert pipelines_for(torch.device("cpu")) == PIPELINES
    assert pipelines_for(torch.device("cuda")) == (*PIPELINES, "captured_floor")
    setup = BenchmarkSetup(Path("data"), 10, 10, 2, torch.device("cpu"))
    with pytest.raises(ValueError, match="CUDA device, got cpu"):
        RUNNERS["captured_floor"](setup)


def test_microseconds_per_step_divide_an_epoch_by_its_steps() -> None:
    # 1280 samples at batch 128: 10 steps; 1300 samples: 11 (the last one smaller).
    assert pipeline_figures("anncore", stub(2.0), FLOPS_PER_SAMPLE, 1.0)["microseconds_per_step"] == pytest.approx(2e5)
    figures = pipeline_figures("notebook", stub(2.2, samples=1300), FLOPS_PER_SAMPLE, 1.0)
    assert (figures["steps_per_epoch"], figures["microseconds_per_step"]) == (11, pytest.approx(2e5))
    # The captured floor says its own steps (full batches only).
    captured = pipeline_figures("captured_floor", stub(0.25, samples=1280, steps=10), FLOPS_PER_SAMPLE, 1.0)
    assert captured["microseconds_per_step"] == pytest.approx(25_000)


def test_anncore_over_the_captured_floor_and_its_target() -> None:
    seconds = {"notebook": 8.0, "floor": 1.0, "anncore": 1.1, "anncore_mlflow": 1.2}
    figures = {name: pipeline_figures(name, stub(s), FLOPS_PER_SAMPLE, 1.0) for name, s in seconds.items()}
    on_cpu = ratios(figures, logging_seconds=0.1)
    assert "anncore_over_captured_floor" not in on_cpu and "anncore_over_captured_floor" not in targets_met(on_cpu)
    figures["captured_floor"] = pipeline_figures("captured_floor", stub(0.5, steps=10), FLOPS_PER_SAMPLE, 1.0)
    on_gpu = ratios(figures, logging_seconds=0.1)
    assert on_gpu["anncore_over_captured_floor"] == pytest.approx(2.2)
    assert on_gpu["floor_over_captured_floor"] == pytest.approx(2.0)
    assert targets_met(on_gpu)["anncore_over_captured_floor"] == {"target": "<= 1.3", "met": False}
    figures["captured_floor"] = pipeline_figures("captured_floor", stub(1.0, steps=10), FLOPS_PER_SAMPLE, 1.0)
    assert targets_met(ratios(figures, 0.1))["anncore_over_captured_floor"]["met"] is True
    assert {key: on_gpu[key] for key in on_cpu} == on_cpu  # the CPU's ratios are unchanged


def test_stacked_figures_are_members_over_epoch_seconds(tiny_fashion_root: Path) -> None:
    """The stacked measurement on the CPU at toy size (the benchmark runs it on CUDA only)."""
    from experiments.benchmark.stacked import learning_rates, measure_stacked, stacked_line, stacked_metrics

    setup = BenchmarkSetup(tiny_fashion_root, 256, 64, 2, torch.device("cpu"), max_batches=2)
    stacked = measure_stacked(setup, sizes=(1, 3))
    assert list(stacked["by_members"]) == ["1", "3"] and stacked["train_size"] == 256
    for k, figures in [(1, stacked["one_at_a_time"]), *((int(k), v) for k, v in stacked["by_members"].items())]:
        assert figures["model_epochs_per_second"] == pytest.approx(k / figures["seconds_per_epoch"])
    best = max(v["model_epochs_per_second"] for v in stacked["by_members"].values())
    assert stacked["best_speedup"] == pytest.approx(best / stacked["one_at_a_time"]["model_epochs_per_second"])
    assert stacked_metrics(stacked)["stacked/K3/model_epochs_per_second"] == stacked["by_members"]["3"]["model_epochs_per_second"]
    assert stacked_line(stacked).startswith("stacked training: K=1 ")
    assert learning_rates(3) == pytest.approx([1e-4, 1e-3, 1e-2]) and learning_rates(1) == [1e-4]
