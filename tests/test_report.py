"""The Quarto report, end to end without Quarto: the experiments fill a temporary MLflow store
(``python -m experiments run all --quick`` and ``python -m experiments.benchmark --quick
--log-mlflow`` on the tiny dataset), then every chunk of every ``.qmd`` runs, in order, in a
real Jupyter kernel started in ``report/`` and pointed at that store. A second store holding
only the hand calculations checks the missing-run messages. The documents themselves are
parsed with pandoc.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pypandoc
import pytest
import yaml
from mlflow.tracking import MlflowClient

from anncore.worked_examples import WORKED_EXAMPLES, notebook_discrepancies
from experiments.studies import EXPERIMENT_NAMES
from reporting.store import run_command
from reporting.study_findings import display_name
from tests.qmd_notebook import cells_by_label, expand_includes, outputs_of
from tests.report_runs import execute_report, run_experiments

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "report"
INDEX = REPORT / "index.qmd"

# chunk label -> experiment whose run it shows, for every chunk that draws a chart
CHART_CELLS = {
    "activation-curves": "activations",
    "activation-comparison": "activations",
    "synthetic-curves": "synthetic",
    "synthetic-regions": "synthetic",
    "baseline-curves": "baseline",
    "baseline-per-class": "baseline",
    "baseline-confusion": "baseline",
    "depth-chart": "depth",
    "depth-curves": "depth",
    "activation-study-curves": "activation_study",
    "activation-study-chart": "activation_study",
    "activation-study-gradients": "activation_study",
    "performance-chart": "benchmark",
}
# chunk label -> experiment, for chunks that show results only when the run exists
RESULT_CELLS = {
    **CHART_CELLS,
    "synthetic-summary": "synthetic",
    "synthetic-predictions": "synthetic",
    "baseline-samples": "baseline",
    "baseline-summary": "baseline",
    "baseline-predictions": "baseline",
    "depth-table": "depth",
    "depth-findings": "depth",
    "activation-study-table": "activation_study",
    "activation-study-findings": "activation_study",
    "simple-ann": "simple_ann",
    "performance-pipelines": "benchmark",
    "performance-ratios": "benchmark",
    "performance-findings": "benchmark",
}
STATUS_CELLS = {
    "activations-status": "activations",
    "forward-status": "hand_calculations",
    "simple-ann-status": "simple_ann",
    "synthetic-status": "synthetic",
    "baseline-status": "baseline",
    "depth-status": "depth",
    "activation-study-status": "activation_study",
    "performance-status": "benchmark",
}
# every study whose latest run the report shows: the suite's experiments and the benchmark
STUDIES = (*EXPERIMENT_NAMES, "benchmark")


@pytest.fixture(scope="module")
def latest_runs(full_store: str) -> dict:
    """The latest finished top-level run of each study, asked of MLflow directly."""
    client = MlflowClient(full_store)
    latest = {}
    for name in STUDIES:
        experiment = client.get_experiment_by_name(f"anncore-{name}")
        (run,) = client.search_runs(
            [experiment.experiment_id],
            "attributes.status = 'FINISHED' and tags.`anncore.role` != 'child'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        latest[name] = run
    return latest


def markdown_of(cell) -> str:
    return "\n".join(outputs_of(cell, "text/markdown"))


def equation_line(markdown: str, lhs: str) -> str:
    (line,) = [line for line in markdown.splitlines() if line.startswith(lhs + " &")]
    return line.rstrip(" \\")


# --- the full store ------------------------------------------------------------------------


def test_every_qmd_is_included_and_every_chunk_ran(full_report) -> None:
    _, files = expand_includes(INDEX)
    assert sorted(files) == sorted(REPORT.glob("*.qmd"))
    code_cells = [cell for cell in full_report.cells if cell.cell_type == "code"]
    chunks = sum(len(re.findall(r"^```\{python\}", path.read_text(), re.M)) for path in files)
    assert len(code_cells) == chunks > 40
    assert all(cell.execution_count for cell in code_cells)
    assert not [o for c in code_cells for o in c.outputs if o.output_type == "error"]


def test_charts_are_interactive_html_with_a_png_and_name_their_run(full_report, latest_runs) -> None:
    cells = cells_by_label(full_report)
    for label, experiment in CHART_CELLS.items():
        html = outputs_of(cells[label], "text/html")
        pngs = outputs_of(cells[label], "image/png")
        assert len(html) == 1 and 'class="vega-chart"' in html[0] and "vegaEmbed(" in html[0], label
        assert len(pngs) == 1 and base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n", label
        assert f"`{latest_runs[experiment].info.run_id[:8]}`" in markdown_of(cells[label]), label
    ids = re.findall(r'class="vega-chart" id="([^"]+)"', "".join(
        "".join(outputs_of(cell, "text/html")) for cell in full_report.cells if cell.cell_type == "code"
    ))  # fmt: skip
    assert len(ids) == len(set(ids)) >= len(CHART_CELLS)


def test_vega_javascript_is_inlined_once_before_the_charts(full_report) -> None:
    html = [h for cell in full_report.cells if cell.cell_type == "code" for h in outputs_of(cell, "text/html")]
    scripts = [h for h in html if "vegaEmbed" in h and "vega-chart" not in h]
    assert len(scripts) == 1 and html.index(scripts[0]) == 0
    assert "cdn" not in scripts[0][:500].lower() and 'src="http' not in "".join(html)


def test_hand_calculations_show_the_engines_values(full_report) -> None:
    cells = cells_by_label(full_report)
    todo = WORKED_EXAMPLES["todo_3_2_1"].solve()
    md = markdown_of(cells["todo-3-2-1"])
    output = todo.layers[-1]
    assert equation_line(md, "a_{1}^{(2)}").endswith(f"= {todo.y_hat[0]:.4f}")
    for j, grad in enumerate(output.grad_weights[0], start=1):
        assert equation_line(md, rf"\frac{{\partial L}}{{\partial W_{{1{j}}}^{{(2)}}}}").endswith(f"= {grad:.4f}")
    assert equation_line(md, r"\frac{\partial L}{\partial b_{1}^{(2)}}").endswith(f"= {output.grad_bias[0]:.4f}")
    assert "agrees with every number above" in md
    answers = markdown_of(cells["todo-answers"])
    assert f"| {todo.y_hat[0]:.4f}" in answers and f"| {output.grad_bias[0]:.4f}" in answers

    forward = WORKED_EXAMPLES["forward_2_3_1"].solve()
    assert equation_line(markdown_of(cells["forward-2-3-1"]), "a_{1}^{(2)}").endswith(f"= {forward.y_hat[0]:.4f}")
    single = markdown_of(cells["single-neuron"])
    assert f"= {WORKED_EXAMPLES['single_neuron_sigmoid'].solve().y_hat[0]:.4f}" in single


def test_notebook_discrepancies_are_reported(full_report) -> None:
    md = markdown_of(cells_by_label(full_report)["backprop-2-2-1"])
    for discrepancy in [d for d in notebook_discrepancies() if d.example == "backprop_2_2_1"]:
        assert f"`{discrepancy.quantity}`" in md and discrepancy.printed_text in md


def test_sample_image_grid_is_the_baseline_artifact(full_report, latest_runs, full_store, tmp_path: Path) -> None:
    local = mlflow.artifacts.download_artifacts(
        run_id=latest_runs["baseline"].info.run_id,
        artifact_path="sample_images.png",
        dst_path=str(tmp_path),
        tracking_uri=full_store,
    )
    (png,) = outputs_of(cells_by_label(full_report)["baseline-samples"], "image/png")
    assert base64.b64decode(png) == Path(local).read_bytes()


def test_provenance_names_every_run_its_time_and_device(full_report, latest_runs) -> None:
    md = markdown_of(cells_by_label(full_report)["provenance"])
    experiments = {name: latest_runs[name] for name in EXPERIMENT_NAMES}
    for name, run in experiments.items():
        assert f"`{run.info.run_id[:8]}`" in md, name
    devices = {run.data.params["device"] for run in experiments.values()}
    assert all(f"`{device}`" in md for device in devices)
    assert "made between" in md and "UTC" in md


def test_activation_study_analysis_follows_from_its_tables(full_report, latest_runs, full_store) -> None:
    parent = latest_runs["activation_study"]
    local = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="summary.csv", tracking_uri=full_store
    )
    summary = pd.read_csv(local)
    md = markdown_of(cells_by_label(full_report)["activation-study-findings"])
    reached = summary[summary["mean_epochs_to_target"].notna()]
    if reached.empty:
        assert "No activation reached" in md
    else:
        fastest = reached["mean_epochs_to_target"].min()
        winners = reached[reached["mean_epochs_to_target"] == fastest]["arm"]
        assert all(f"**{display_name(arm)}**" in md.split("\n")[0] for arm in winners)


def test_all_markdown_outputs_convert_with_pandoc_without_warnings(full_report) -> None:
    text = "\n\n".join(
        md for cell in full_report.cells if cell.cell_type == "code" for md in outputs_of(cell, "text/markdown")
    )
    for target, extra in (("html", ["--mathml"]), ("typst", [])):
        converted = pypandoc.convert_text(text, target, format="markdown", extra_args=[*extra, "--fail-if-warnings"])
        assert converted
    typst = pypandoc.convert_text(text, "typst", format="markdown")
    assert not re.search(r"\\(frac|begin|partial|delta|operatorname)", typst)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_html_outputs_draw_every_chart_offline_in_chromium(full_report, tmp_path: Path) -> None:
    """The HTML outputs in document order (scripts once, then fragments), as the HTML render
    places them, drawn by headless Chromium with no network: every chart div gets an SVG."""
    html = [h for cell in full_report.cells if cell.cell_type == "code" for h in outputs_of(cell, "text/html")]
    page = tmp_path / "report.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>' + "\n".join(html) + "</body></html>")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
         "--proxy-server=127.0.0.1:9", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    ).stdout  # fmt: skip
    charts = re.findall(r'<div class="vega-chart[^"]*" id="([^"]+)"[^>]*>(.*?)</div>\s*<script', dom, re.S)
    assert len(charts) >= len(CHART_CELLS)
    for div_id, inner in charts:
        assert "<svg" in inner and inner.count("<path") > 3, div_id


def test_no_progress_bars_leak_into_the_document(full_report) -> None:
    streams = "".join(
        output.get("text", "") for cell in full_report.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "stream"
    )  # fmt: skip
    assert "Downloading artifacts" not in streams


# --- a store with experiments missing ------------------------------------------------------


@pytest.fixture(scope="module")
def partial_report(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory):
    uri = run_experiments(["hand_calculations"], tiny_fashion_root, tmp_path_factory.mktemp("partial-store"))
    return execute_report(uri)


def test_missing_experiments_show_the_command_instead_of_results(partial_report) -> None:
    cells = cells_by_label(partial_report)
    for label, name in STATUS_CELLS.items():
        md = markdown_of(cells[label])
        if name == "hand_calculations":
            assert "Results from run" in md
        else:
            assert "No results yet" in md and run_command(name) in md, label
    for label in RESULT_CELLS:
        assert cells[label].outputs == [], label
    todo = WORKED_EXAMPLES["todo_3_2_1"].solve()
    assert f"= {todo.y_hat[0]:.4f}" in markdown_of(cells["todo-3-2-1"])
    assert "none yet" in markdown_of(cells["provenance"])


# --- the documents as pandoc reads them ----------------------------------------------------


def pandoc_json(markdown: str) -> dict:
    # Quarto hands pandoc executable chunks as code blocks; do the same for plain pandoc.
    markdown = re.sub(r"^```\{python\}", "```{.python .cell}", markdown, flags=re.M)
    return json.loads(pypandoc.convert_text(markdown, "json", format="markdown", extra_args=["--fail-if-warnings"]))


def walk(node, kind: str) -> list:
    found = []
    if isinstance(node, dict):
        if node.get("t") == kind:
            found.append(node)
        for value in node.values():
            found += walk(value, kind)
    elif isinstance(node, list):
        for value in node:
            found += walk(value, kind)
    return found


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.qmd")), ids=lambda p: p.name)
def test_qmd_parses_with_math_and_labelled_chunks(path: Path) -> None:
    document = pandoc_json(path.read_text())
    chunks = [b for b in walk(document["blocks"], "CodeBlock") if "cell" in b["c"][0][1]]
    assert chunks, "every document runs at least one chunk"
    for block in chunks:
        assert re.match(r"#\| label: [a-z0-9-]+\n", block["c"][1]), block["c"][1][:60]
    if path.name != "index.qmd":
        assert walk(document["blocks"], "Math"), "each section has mathematics"


def test_index_front_matter_and_includes() -> None:
    document = pandoc_json(INDEX.read_text())
    assert "date" in document["meta"]
    # The title page is the project's, per edition (a document's own would override the profile's).
    for config in ("_quarto.yml", "_quarto-ru.yml"):
        assert {"title", "subtitle", "abstract"} <= set(yaml.safe_load((REPORT / config).read_text())), config
    includes = re.findall(r"\{\{< include (\S+) >\}\}", INDEX.read_text())
    assert [(REPORT / name).is_file() for name in includes] == [True] * 9


def test_quarto_project_formats() -> None:
    config = yaml.safe_load((REPORT / "_quarto.yml").read_text())
    meta = pandoc_json("---\n" + (REPORT / "_quarto.yml").read_text() + "\n---\n")["meta"]
    assert set(meta) >= {"project", "format", "execute"}
    html, typst = config["format"]["html"], config["format"]["typst"]
    assert html["html-math-method"] == "mathml" and html["embed-resources"] is True
    assert typst is not None and config["execute"]["echo"] is False
    assert (REPORT / html["css"]).is_file()
    assert config["project"]["render"] == ["index.qmd"]
