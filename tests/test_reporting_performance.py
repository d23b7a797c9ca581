"""reporting.sections.performance against a real quick benchmark logged into a temporary store.

Every table cell, target verdict, chart bar and sentence is compared with the run's own
``benchmark.json``, downloaded from MLflow directly; a store without a benchmark run shows the
command that makes one and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from reporting.sections import performance
from reporting.sections.performance import PIPELINE_FIGURES, figure, target_text
from tests.benchmark_runs import log_quick_benchmark
from tests.test_charts import assert_affine, rendered_marks


@pytest.fixture(scope="module")
def benchmark_store(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return log_quick_benchmark(tiny_fashion_root, tmp_path_factory.mktemp("benchmark-store"))


@pytest.fixture(scope="module")
def logged(benchmark_store: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict, int]:
    """The benchmark's parent run, its benchmark.json and its number of child runs, from MLflow directly."""
    client = MlflowClient(benchmark_store)
    experiment = client.get_experiment_by_name("anncore-benchmark")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`anncore.role` = 'parent'")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    local = client.download_artifacts(parent.info.run_id, "benchmark.json", str(tmp_path_factory.mktemp("json")))
    return parent, json.loads(Path(local).read_text()), len(children)


@pytest.fixture
def report_store(benchmark_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the report's helpers at the benchmark's store, as the render's environment does."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", benchmark_store)
    return benchmark_store


def table_rows(markdown: str, index: int = 0) -> list[dict[str, str]]:
    """The body rows of the ``index``-th pipe table in ``markdown``, keyed by header."""
    tables = [block for block in markdown.split("\n\n") if block.startswith("|")]
    lines = [line for line in tables[index].splitlines() if line.startswith("|")]
    header, _rule, *body = lines

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    return [dict(zip(cells(header), cells(line))) for line in body]


def as_number(text: str) -> float:
    return float(text.replace(",", ""))


# --- the section with a benchmark run ------------------------------------------------------


def test_status_cites_the_run_and_its_settings(report_store: str, logged) -> None:
    parent, results, children = logged
    settings, environment = results["settings"], results["environment"]
    md = performance.status().data
    assert f"`{parent.info.run_id[:8]}`" in md and "anncore-benchmark" in md
    assert f"with {children} child run" in md
    assert f"{settings['train_size']:,} images ({settings['train_size_mode']})" in md
    assert f"evaluated on {settings['test_size']:,}" in md and f"batches of {settings['batch_size']}" in md
    assert f"{settings['epochs']} epochs per run" in md and f"in {settings['rounds']} round" in md
    assert f"`{environment['device']}` ({environment['device_name']})" in md
    assert f"{environment['torch_threads']} torch threads on {environment['cpu_count']} CPUs" in md
    assert f"{settings['load_average_start']:.2f} at the start and {settings['load_average_end']:.2f} at the end" in md
    assert ("quick mode" in md) == settings["quick"]


def test_pipeline_table_cells_are_the_runs_figures(report_store: str, logged) -> None:
    parent, results, _ = logged
    md = performance.pipeline_table().data
    # Two tables, one row per pipeline in each: what it runs and its optimizer, then its figures
    described, measured = table_rows(md, 0), table_rows(md, 1)
    assert [len(row) for row in described] == [3] * len(described) and [row["pipeline"] for row in measured] == [row["pipeline"] for row in described]
    rows = [{**a, **b} for a, b in zip(described, measured)]
    assert [row["pipeline"] for row in rows] == [f"`{name}`" for name in results["pipelines"]]
    for row, figures in zip(rows, results["pipelines"].values()):
        assert row["what it runs"] == figures["description"] and row["optimizer"] == figures["optimizer"].replace("-", "\u2011")
        for header, key in PIPELINE_FIGURES.items():
            value = figures[key]
            assert row[header] == figure(value), (row["pipeline"], header)
            if value is None:
                assert row[header] == "—"
            else:  # three significant digits of the logged value
                assert as_number(row[header]) == pytest.approx(value, rel=5e-3), (row["pipeline"], header)
    assert f"(MLflow run `{parent.info.run_id[:8]}`)" in md


def test_ratio_table_shows_every_ratio_against_its_target(report_store: str, logged) -> None:
    _, results, _ = logged
    rows = table_rows(performance.ratio_table().data)
    assert [row["ratio"] for row in rows] == [f"`{name}`" for name in results["ratios"]]
    for row, (name, value) in zip(rows, results["ratios"].items()):
        assert row["value"] == f"{value:.3f}"
        target = results["targets"].get(name)
        if target is None:
            assert (row["target"], row["result"]) == ("—", "—"), name
        else:
            assert row["target"] == target_text(target["target"]) and target["target"].split()[-1] in row["target"]
            assert row["result"] == ("met" if target["met"] else "missed"), name
    assert {row["result"] for row in rows} - {"—"}, "the run has targets"


def test_chart_draws_one_labelled_bar_per_pipeline(report_store: str, logged) -> None:
    parent, results, _ = logged
    outputs = performance.pipeline_chart()
    (chart_output,) = outputs.parts  # the chart with its source line under it
    seconds = [figures["seconds_per_60000_images"] for figures in results["pipelines"].values()]
    marks = rendered_marks(chart_output.chart)
    (bars,) = [m for m in marks if m["marktype"] == "rect"]
    (labels,) = [m for m in marks if m["marktype"] == "text"]
    assert len(bars["items"]) == len(labels["items"]) == len(results["pipelines"])
    assert_affine([bar["x"] + bar["width"] for bar in bars["items"]], seconds)
    for label, value in zip(labels["items"], seconds):
        assert as_number(label["text"]) == pytest.approx(value, rel=5e-3)
    assert f"`{parent.info.run_id[:8]}`" in chart_output.caption and chart_output.caption.startswith("*Source: run")


def test_findings_name_each_target_met_or_missed_and_the_fastest_pipeline(report_store: str, logged) -> None:
    _, results, _ = logged
    md = performance.findings().data
    assert md.startswith("**What the data say.** The run ")  # the lead-in opens the findings' own paragraph
    targets, ratios = results["targets"], results["ratios"]
    met = sum(target["met"] for target in targets.values())
    counted = {len(targets): f"met all {met} of its", 0: f"met none of its {len(targets)}"}.get(
        met, f"met {met} of its {len(targets)}"
    )
    assert counted in md
    for name, target in targets.items():
        assert f"`{name}` ({ratios[name]:.3f}, target {target_text(target['target'])})" in md
    seconds = {name: figures["seconds_per_60000_images"] for name, figures in results["pipelines"].items()}
    assert f"fastest pipeline is `{min(seconds, key=seconds.get)}`" in md
    assert f"the slowest `{max(seconds, key=seconds.get)}`" in md
    assert "notebook_over_anncore" not in targets  # shown, without a verdict
    assert f"$S = {ratios['notebook_over_anncore']:.3f}$ times as fast" in md and "$S$ has no target" in md


def test_findings_give_the_peak_and_each_pipelines_fraction_of_it(report_store: str, logged) -> None:
    _, results, _ = logged
    md = performance.findings().data
    peak, pipelines = results["peak"], results["pipelines"]
    assert f"matrix product of {peak['size']:,} × {peak['size']:,}" in md
    assert f"ran at {figure(peak['gflops'])} GFLOPS, the median of {peak['products_timed']} products" in md
    assert "load average " + ", ".join(f"{load:.2f}" for load in peak["load_average_each"]) + " when timed" in md
    assert f"6 × the {results['flops']['forward_multiply_adds_per_sample']:,} forward multiply-adds" in md
    for name in ("floor", "anncore"):
        rate, fraction = pipelines[name]["training_gflops"], pipelines[name]["fraction_of_peak"]
        assert fraction == pytest.approx(rate / peak["gflops"])
        assert f"`{name}` at {figure(rate)} GFLOPS ({fraction:.3f} of the peak)" in md


# --- a store without a benchmark run -------------------------------------------------------


def test_missing_run_names_the_command_and_shows_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    md = performance.status().data
    assert "No results yet" in md and "`anncore-benchmark`" in md
    assert "python -m experiments.benchmark --data-dir <data-dir> --log-mlflow" in md
    for chunk in (performance.pipeline_table, performance.ratio_table, performance.pipeline_chart, performance.findings):
        assert chunk() is None, chunk.__name__


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.66316, "0.663"), (77.714, "77.7"), (0.0021706, "0.00217"), (2758.675, "2,759"), (25479.08, "25,479"),
     (0.0, "0"), (None, "—"), (float("nan"), "—")],
)  # fmt: skip
def test_figures_keep_three_significant_digits_in_plain_notation(value: float | None, text: str) -> None:
    assert figure(value) == text


def test_targets_show_their_relation_as_a_symbol() -> None:
    assert target_text(">= 5") == "≥ 5" and target_text("<= 1.05") == "≤ 1.05"


PEAK_RESULTS = {
    "peak": {"size": 2048, "gflops": 200.0, "best_gflops": 210.04, "products_timed": 15,
             "load_average_each": [1.5, 2.25, 0.5]},
    "flops": {"forward_multiply_adds_per_sample": 566_528, "training_flops_per_sample": 3_399_168},
    "pipelines": {"floor": {"training_gflops": 130.0, "fraction_of_peak": 0.65},
                  "anncore": {"training_gflops": 127.4, "fraction_of_peak": 0.637}},
}  # fmt: skip


def test_peak_sentence_from_hand_made_results() -> None:
    assert performance.peak_sentence(PEAK_RESULTS) == (
        "An fp32 matrix product of 2,048 × 2,048 by 2,048 × 2,048 ran at 200 GFLOPS, the median of 15 products "
        "timed before the rounds (best 210; load average 1.50, 2.25, 0.50 when timed). Counting 6 × the 566,528 "
        "forward multiply-adds of one sample (3.40 MFLOP), training ran `floor` at 130 GFLOPS (0.650 of the peak) "
        "and `anncore` at 127 GFLOPS (0.637 of the peak)."
    )


def test_a_run_from_before_the_peak_has_no_peak_sentence_and_dashes_for_its_rates() -> None:
    old = {"pipelines": {"floor": {"seconds_per_epoch": 0.2}, "anncore": {"seconds_per_epoch": 0.21}}}
    assert performance.peak_sentence(old) == ""
    frame = performance.pipeline_frame(old["pipelines"])
    assert list(frame["training GFLOPS"]) == list(frame["fraction of peak"]) == ["—", "—"]


def test_findings_say_where_the_profiled_epoch_went(report_store: str, logged) -> None:
    _, results, _ = logged
    md = performance.findings().data
    profiled = results["profile"]
    assert f"one anncore epoch of {profiled['samples']:,} samples" in md
    shares = sorted(profiled["fractions"].items(), key=lambda item: item[1], reverse=True)
    assert ", ".join(f"{kind} {share:.1%}" for kind, share in shares) in md
    assert f"ran at {figure(profiled['matmul_gflops'])} GFLOPS" in md


def test_profile_sentence_from_hand_made_results() -> None:
    profiled = {"samples": 8226, "wall_seconds": 0.27, "matmul_gflops": 121.0,
                "fractions": {"matrix products": 0.65, "Adam step": 0.111, "batch indexing": 0.0183}}
    assert performance.profile_sentence({**PEAK_RESULTS, "profile": profiled}) == (
        "Under `torch.profiler`, one anncore epoch of 8,226 samples (0.270 s, the profiler's cost included) went to: "
        "matrix products 65.0%, Adam step 11.1%, batch indexing 1.8%. The matrix products themselves ran at "
        "121 GFLOPS, 0.605 of the peak, counting the FLOPs they execute."
    )
    assert performance.profile_sentence(PEAK_RESULTS) == ""


def test_notebook_sentence_has_no_verdict() -> None:
    text = performance.notebook_sentence({"notebook_over_anncore": 3.0704})
    assert text.startswith("The anncore trainer runs an epoch $S = 3.070$ times as fast")
    assert "met" not in text and "missed" not in text
    assert performance.notebook_sentence({}) == ""


def test_a_cuda_run_shows_the_captured_floor_and_its_ratio() -> None:
    pipelines = {"anncore": {"seconds_per_epoch": 0.15, "microseconds_per_step": 320.0},
                 "captured_floor": {"seconds_per_epoch": 0.12, "microseconds_per_step": 256.0,
                                    "description": "the floor's step captured once as a CUDA graph, replayed per batch"}}
    frame = performance.pipeline_frame(pipelines)
    assert list(frame["µs / step"]) == ["320", "256"]
    assert frame["what it runs"].iloc[1] == pipelines["captured_floor"]["description"]
    ratios = {"anncore_over_captured_floor": 1.25}
    rows = performance.ratio_frame(ratios, {"anncore_over_captured_floor": {"target": "<= 1.3", "met": True}})
    assert rows.iloc[0]["what it divides"] == "anncore ÷ captured floor (CUDA graph), s / epoch"
    assert (rows.iloc[0]["value"], rows.iloc[0]["result"]) == ("1.250", "met")


def test_a_hyphenated_optimizer_name_never_breaks_at_its_hyphen() -> None:
    """ "Adam for-/loop" broke across lines in the PDF's narrow cell: a no-break hyphen (U+2011)."""
    assert performance.optimizer_text("Adam for-loop (torch default on CPU)") == "Adam for\u2011loop (torch default on CPU)"
    assert performance.optimizer_text("Adam fused=True") == "Adam fused=True"
