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
from tests.qmd_notebook import cells_by_label, expand_includes, inline_pngs, outputs_of, select_content
from tests.external_tools import find, require, requires
from tests.report_runs import execute_report, run_experiments
from tests.quarto_formats import (
    CDN_TRIGGERS, TYPST_014, blank_fractions, compile_typst, document_markdown, front_matter, headings_at_page_foot, markdown_to,
    pages_before_a_chapter,
    pdf_text, pdf_word_boxes, typst_build_dir, typst_version,
)  # fmt: skip

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
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# Quarto's HTML body column at its widest: $grid-body-column 800px less 3em (_bootstrap-variables.scss).
QUARTO_COLUMN_PX = 752


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


def raw_blocks(markdown: str, format_name: str) -> list[str]:
    """The contents of the pandoc raw blocks (```` ```{=html} ````) of ``format_name`` in ``markdown``."""
    return [m.group(2) for m in re.finditer(r"^(`{3,})\{=" + format_name + r"\}\n(.*?)\n\1$", markdown, re.S | re.M)]


def code_markdown(notebook) -> list[str]:
    """Every ``text/markdown`` output of the notebook, in document order."""
    return [md for cell in notebook.cells if cell.cell_type == "code" for md in outputs_of(cell, "text/markdown")]


def test_charts_are_interactive_html_with_a_png_and_name_their_run(full_report, latest_runs) -> None:
    cells = cells_by_label(full_report)
    for label, experiment in CHART_CELLS.items():
        md = markdown_of(cells[label])
        (html,) = raw_blocks(md, "html")
        (typst,) = [block for block in raw_blocks(md, "typst") if "image(" in block]  # a long table adds its own
        assert 'class="vega-chart"' in html and "vegaEmbed(" in html, label
        (png,) = re.findall(r'image\("(_chart_images/[^"]+\.png)"', typst)
        assert (REPORT / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", label
        assert f"`{latest_runs[experiment].info.run_id[:8]}`" in md, label
    ids = re.findall(r'class="vega-chart" id="([^"]+)"', "".join(code_markdown(full_report)))
    assert len(ids) == len(set(ids)) >= len(CHART_CELLS)
    assert not set(ids) & set(cells_by_label(full_report))


def test_no_output_makes_quarto_fetch_require_js_from_a_cdn(full_report) -> None:
    """Quarto adds require.js and jQuery from a CDN to the HTML when any display output carries
    text/html or application/javascript (quarto-cli widgets.ts); charts come as Markdown instead."""
    for cell in full_report.cells:
        for output in cell.get("outputs", []):
            assert not set(output.get("data", {})) & set(CDN_TRIGGERS), (cell.source[:60], list(output["data"]))


def test_vega_javascript_is_inlined_once_before_the_charts(full_report) -> None:
    html = [block for md in code_markdown(full_report) for block in raw_blocks(md, "html")]
    scripts = [h for h in html if "vegaEmbed" in h and "vega-chart" not in h]
    assert len(scripts) == 1 and html.index(scripts[0]) == 0
    assert "cdn" not in scripts[0][:500].lower() and 'src="http' not in "".join(html)
    # Quarto parses every "<table" in a raw HTML block as a table (parsehtml.lua) and warned
    # "Unable to parse table from raw html block: skipping" at each render for the bundle's string
    assert not [h[:80] for h in html if re.search(r"<table", h, re.I)]


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
    # outside formulas a minus is typeset as − (reporting.typography)
    assert f"| {todo.y_hat[0]:.4f}" in answers and f"| {output.grad_bias[0]:.4f}".replace("-", "−") in answers

    forward = WORKED_EXAMPLES["forward_2_3_1"].solve()
    assert equation_line(markdown_of(cells["forward-2-3-1"]), "a_{1}^{(2)}").endswith(f"= {forward.y_hat[0]:.4f}")
    single = markdown_of(cells["single-neuron"])
    assert f"= {WORKED_EXAMPLES['single_neuron_sigmoid'].solve().y_hat[0]:.4f}" in single


def test_notebook_discrepancies_are_reported(full_report) -> None:
    md = markdown_of(cells_by_label(full_report)["backprop-2-2-1"])
    for discrepancy in [d for d in notebook_discrepancies() if d.example == "backprop_2_2_1"]:
        assert f"`{discrepancy.quantity}`" in md and discrepancy.printed_text.replace("-", "−") in md


def test_sample_image_grid_is_the_baseline_artifact(full_report, latest_runs, full_store, tmp_path: Path) -> None:
    local = mlflow.artifacts.download_artifacts(
        run_id=latest_runs["baseline"].info.run_id,
        artifact_path="sample_images.png",
        dst_path=str(tmp_path),
        tracking_uri=full_store,
    )
    (png,) = inline_pngs(cells_by_label(full_report)["baseline-samples"])
    assert base64.b64decode(png) == Path(local).read_bytes()


def test_provenance_names_every_run_its_time_and_device(full_report, latest_runs) -> None:
    md = markdown_of(cells_by_label(full_report)["provenance"])
    experiments = {name: latest_runs[name] for name in EXPERIMENT_NAMES}
    for name, run in experiments.items():
        assert f"`{run.info.run_id[:8]}`" in md, name
    devices = {run.data.params["device"] for run in experiments.values()}
    assert all(f"`{device}`" in md for device in devices)
    between = re.search(r"made between (.+?) and (.+?) on ", md)
    assert (between is None) == ("all made at" in md) and "UTC" in md
    assert between is None or between.group(1) != between.group(2)  # not "between 13:42 UTC and 13:42 UTC"


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


@pytest.fixture(scope="module")
def html_page(full_report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report as HTML: the Markdown Quarto would hand pandoc for HTML, through the bundled pandoc."""
    build = tmp_path_factory.mktemp("html")
    page = build / "index.html"
    page.write_text(markdown_to(document_markdown(full_report, "html", build), "html"))
    return page


@pytest.fixture(scope="module")
def typst_build(full_report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report as Typst (``index.typ``) beside the chart PNGs, as Quarto lays it out for typst, and
    the Markdown Quarto would give pandoc for it (``index.md``)."""
    build = typst_build_dir(REPORT, tmp_path_factory.mktemp("typst"))
    markdown = front_matter(REPORT, "typst") + document_markdown(full_report, "typst", build)
    (build / "index.md").write_text(markdown)
    (build / "index.typ").write_text(markdown_to(markdown, "typst"))
    return build


@pytest.fixture(scope="module")
def pdf_warnings(typst_build: Path) -> dict[str, list[str]]:
    """The PDF compiled by typst 0.15 (in this venv) and 0.14 (.venv/typst-0.14): version -> typst's warnings."""
    warnings = {}
    for typst_path in (None, TYPST_014):
        if typst_path is not None and not typst_path.is_dir():
            continue
        version = typst_version(typst_path)
        warnings[version] = compile_typst(typst_build / "index.typ", typst_build / f"index-{version}.pdf", typst_path)
    return warnings


@pytest.fixture(scope="module")
def pdf_texts(typst_build: Path, pdf_warnings) -> dict[str, str]:
    """Each PDF's page text (typst version -> text)."""
    require("pdftotext")
    return {version: pdf_text(typst_build / f"index-{version}.pdf") for version in pdf_warnings}


def test_pdf_compiles_without_a_typst_warning(pdf_warnings) -> None:
    """Typst 0.14 and 0.15 warned "layout did not converge within 5 attempts" when each image was
    shrunk to the room left on its page (each size depended on the ones before): the PDF then
    showed whatever the fifth pass left. Figures float now, nothing is measured."""
    assert len(pdf_warnings) >= 1 and all(warnings == [] for warnings in pdf_warnings.values()), pdf_warnings


def test_every_chunk_shows_one_output_and_every_figure_floats_from_the_top_level(full_report, typst_build: Path) -> None:
    """Quarto wraps a chunk of several outputs (or any output without ``output: asis``) in a block,
    from which a figure cannot float to the top or bottom of a page: every chunk shows at most one
    output, and every figure of the Typst document (as Quarto writes it) stands at its top level."""
    code_cells = [cell for cell in full_report.cells if cell.cell_type == "code"]
    displays = {cell.metadata["options"].get("label"): sum(o.output_type in ("display_data", "execute_result") for o in cell.outputs)
                for cell in code_cells}  # fmt: skip
    assert max(displays.values()) == 1, {label: n for label, n in displays.items() if n > 1}
    document = json.loads(pypandoc.convert_text((typst_build / "index.md").read_text(), "json", format="markdown"))
    floats = [b for b in walk(document["blocks"], "RawBlock") if b["c"][1].startswith("#place(auto, float: true")]
    top = [b for b in document["blocks"] if b["t"] == "RawBlock" and b["c"][1].startswith("#place(auto, float: true")]
    assert len(floats) == len(top) >= len(CHART_CELLS) + 2  # the charts and two images (sample grids)
    typst = (typst_build / "index.typ").read_text()
    assert typst.count("#place(auto, float: true") == len(floats)


@pytest.fixture(scope="module")
def pdf_raw_texts(typst_build: Path, pdf_texts) -> dict[str, str]:
    """Each PDF's text in content order (``pdftotext -raw``): a formula's pieces as typst set them."""
    return {version: pdf_text(typst_build / f"index-{version}.pdf", raw=True) for version in pdf_texts}


@requires("pdftoppm")
def test_no_pdf_page_is_left_half_empty(typst_build: Path, pdf_texts) -> None:
    """A heading and a sentence above a chart or derivation that could not break, moved whole to the
    next page, left 45-58 % of a page blank: images float, derivations and tables break. No page
    but the last has more than a quarter of its text area in tall white gaps, except a chapter's
    last page: a figure still waiting there is placed before the next chapter, on the next page if
    it does not fit, which can leave at most its own height blank (under 45 % of a page)."""
    for version in pdf_texts:
        pdf = typst_build / f"index-{version}.pdf"
        fractions, before_chapter = blank_fractions(pdf), pages_before_a_chapter(typst_build / "index.typ", pdf)
        blank = [(page, round(f, 2)) for page, f in enumerate(fractions[:-1], start=1)
                 if f > (0.45 if page in before_chapter else 0.25)]  # fmt: skip
        assert len(fractions) > 20 and len(before_chapter) >= 8 and not blank, (version, blank)


@requires("pdftotext")
def test_no_pdf_heading_ends_a_page(typst_build: Path, pdf_texts) -> None:
    """A heading keeps room for its first lines under it (index.qmd's heading rule): none is a page's
    last line. (A heading and one sentence above a chart that moves to the next page can still end
    a page: the rule keeps 4em, not the chart's height.)"""
    for version in pdf_texts:
        pdf = typst_build / f"index-{version}.pdf"
        stranded = headings_at_page_foot(typst_build / "index.typ", pdf, lines=1)
        assert not stranded, (version, stranded)


@requires("pdftotext")
def test_pdf_piecewise_definitions_keep_each_value_apart_from_its_condition(pdf_raw_texts) -> None:
    """Pandoc writes ``cases`` for Typst with nothing between a value and its condition: ReLU read
    "zz > 0 / 0z ≤ 0". The definitions write a comma and a space, which every path keeps."""
    for version, text in pdf_raw_texts.items():
        rows = re.findall(r"^(.+), 𝑧 ([>≤]) 0$", text, re.M)
        # ReLU, ReLU', LeakyReLU, LeakyReLU', ELU, ELU': two rows each
        assert len(rows) >= 12 and {"𝑧", "0", "1", "𝛼", "𝛼𝑧"} <= {value for value, _ in rows}, (version, rows)
        assert not re.search(r"(?:𝑧|0|1|𝛼)𝑧 ?[>≤] ?0", text), version


@requires("pdftotext")
def test_pdf_brackets_hug_what_they_enclose(pdf_raw_texts) -> None:
    """``\\bigl(`` became a scaled box in Typst, set apart from its contents ("f′ ( z )"), and an
    ``\\operatorname`` a word set apart from its argument ("ReLU (z)")."""
    for version, text in pdf_raw_texts.items():
        assert not re.findall(r".{0,20}(?:[(] [𝑓𝑧𝜎𝐖𝐚𝐳]|[𝑧ℎ] [)]).{0,20}", text), version
        assert not re.findall(r"(?:ReLU|ELU|softmax) \(𝑧", text), version
        assert "(𝑓(𝑧 + ℎ) − 𝑓(𝑧 − ℎ))/2ℎ" in text and "ReLU(𝑧)" in text, version


@requires("pdftotext")
def test_pdf_compiles_with_typst_0_14_and_0_15_and_shows_the_3_2_1_values(pdf_texts) -> None:
    """Every formula compiles with both typst lines Quarto bundles (\\odot once became typst 0.14's
    dot.circle, which 0.15 removed); the TO-DO 3-2-1 numbers are on the page."""
    assert "0.15.2" in pdf_texts, "the dev extra pins typst==0.15.2 (typst 0.15.1)"
    if "0.14.9" not in pdf_texts:
        require("typst-0.14")  # skips, saying how to install it; 0.15 passed
    todo = WORKED_EXAMPLES["todo_3_2_1"].solve()
    expected = [f"{todo.y_hat[0]:.4f}", f"{todo.loss:.4f}", f"{todo.layers[-1].grad_bias[0]:.4f}".replace("-", "−")]
    assert expected == ["0.5426", "0.0331", "−0.0639"]
    for version, text in pdf_texts.items():
        assert all(value in text for value in expected), version
        assert text.count("⊙") >= 3, version  # the formulas that once stopped typst 0.15


@requires("pdftotext")
def test_pdf_table_cells_stay_inside_their_columns(typst_build: Path, pdf_texts) -> None:
    """No word of a table runs into the next column or off the page: on each text line of the PDF,
    word boxes leave a gap (an overflowing cell drew "hand_calculations133c0dac" as one run of
    glyphs). Only plain ASCII words count: a formula's glyphs (hats, sums) sit close by design."""
    version = max(pdf_texts)
    words = pdf_word_boxes(typst_build / f"index-{version}.pdf")
    plain = re.compile(r"^[A-Za-z0-9_.,:;%()'/+=-]+$")
    touching, outside = [], []
    right_edge = 595.3 - 56.7 + 4  # A4 less the 2 cm margin, plus a hyphen's overhang
    for (page, _), line in words.items():
        line.sort()
        for (_, x1, word), (next_x0, _, next_word) in zip(line, line[1:]):
            if next_x0 < x1 + 1.0 and plain.match(word) and plain.match(next_word):
                touching.append((page, word, next_word))
        outside += [(page, word) for _, x1, word in line if x1 > right_edge]
    assert not touching and not outside, (touching[:10], outside[:10])
    text = pdf_texts[version]
    # Cells are ragged right and unhyphenated, inline code is never broken ("--hidden-"/"sizes", "an-"/"ncore")
    assert "--hidden-sizes" in text and not re.findall(r".{0,30}\b(?:an|ac|ac-cu|val-i)-$", text, re.M)
    for name in ("hand_calculations", "activation_study", "784-128-64-32-16-10"):
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), name


def test_no_element_id_twice_and_none_a_chunk_label(full_report, html_page: Path) -> None:
    """Quarto gives each chunk's output the chunk label as element id: a chart whose id equalled a
    label was drawn into that chunk's place (the benchmark's table vanished). No id of the page
    (charts, tables, headings) appears twice, and none is a chunk label."""
    labels = set(cells_by_label(full_report))
    html = html_page.read_text()
    ids = re.findall(r'\sid="([^"]+)"', html)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    chart_ids = re.findall(r'class="vega-chart" id="([^"]+)"', html)
    table_ids = re.findall(r'<table[^>]*\sid="([^"]+)"', html)
    assert not duplicates and not labels & set(ids), (duplicates, sorted(labels & set(ids)))
    assert len(chart_ids) >= len(CHART_CELLS) and all(i.startswith("chart-") for i in chart_ids)
    assert len(table_ids) > 20 and all(i.startswith("tbl-") for i in table_ids)
    assert not [label for label in labels if label.startswith(("chart-", "tbl-"))]


def test_every_table_is_labelled_so_quarto_keeps_its_caption(full_report, typst_build: Path) -> None:
    """Quarto drops an unlabelled table's caption from Typst (quarto-cli 11733), and with it the
    run it names: every table of every output carries a ``tbl-`` label and a caption, and the
    Typst document places each as a captioned figure."""
    tables = []
    for md in code_markdown(full_report):
        document = json.loads(pypandoc.convert_text(md, "json", format="markdown"))
        tables += walk(document["blocks"], "Table")
    labelled = [t for t in tables if t["c"][0][0].startswith("tbl-") and walk(t["c"][1][1], "Str")]  # id, caption
    assert len(tables) > 20 and len(labelled) == len(tables)
    typst = (typst_build / "index.typ").read_text()
    captions = re.findall(r"\n  , caption: \[(.*?)\]\n  , kind: table\n  \)\n<(tbl-[a-z0-9-]+)>", typst, re.S)
    assert len(captions) == len(re.findall(r"\n  , kind: table\n", typst)) >= len(tables), (len(captions), len(tables))
    assert sum("MLflow run" in re.sub(r"\s+", " ", caption) for caption, _ in captions) >= len(tables) - 4  # 4 from anncore at render time


def test_no_flag_turns_into_an_en_dash(html_page: Path, pdf_texts) -> None:
    """Pandoc's smart punctuation makes ``--lr`` an en dash outside code; a copied command breaks."""
    html_text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", html_page.read_text(), flags=re.S))
    for where, text in {"html": html_text, **{f"pdf {v}": t for v, t in pdf_texts.items()}}.items():
        assert not re.findall(r".{0,30}–[a-z].{0,10}", text), where
    assert "--hidden-sizes" in html_text


def chart_specs(notebook) -> dict[str, dict]:
    """Every chart's Vega-Lite spec, by its div id, from the HTML blocks of the notebook's Markdown."""
    specs = {}
    for md in code_markdown(notebook):
        for html in raw_blocks(md, "html"):
            for div_id, rest in re.findall(r'getElementById\("([^"]+)"\), (.*)', html):
                specs[div_id], _ = json.JSONDecoder().raw_decode(rest)
    return specs


def titles_in(spec) -> list[str]:
    """Every axis, legend and tooltip title in a Vega-Lite spec."""
    found = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "title" and isinstance(value, str):
                found.append(value)
            else:
                found += titles_in(value)
    elif isinstance(spec, list):
        for value in spec:
            found += titles_in(value)
    return found


def test_charts_use_reader_facing_titles_and_the_tables_arm_names(full_report) -> None:
    specs = chart_specs(full_report)
    for div_id, spec in specs.items():
        for title in titles_in(spec.get("hconcat", spec.get("layer", spec))) + titles_in(spec.get("spec", {})):
            assert "_" not in title and title not in ("arm", "final test acc"), (div_id, title)
    comparison = specs["chart-activation-study-comparison"]
    assert comparison["layer"][0]["encoding"]["x"]["title"] == "activation"
    assert specs["chart-depth-comparison"]["layer"][0]["encoding"]["x"]["title"] == "architecture"
    table = markdown_of(cells_by_label(full_report)["activation-study-table"])
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]  # after the header and the dashes
    table_arms = [row.split("|")[1].strip() for row in rows]
    chart_arms = [row["arm"] for row in comparison["datasets"][next(iter(comparison["datasets"]))]]
    assert chart_arms == table_arms and "ReLU" in chart_arms


@requires("chromium")
def test_html_draws_every_chart_offline_in_chromium_within_quartos_column(html_page: Path) -> None:
    """The HTML page drawn by Chromium with every request but the file itself refused: each chart
    gets an SVG with marks, nothing asks the network, no script fails (require.js's "define is not
    defined"), and no chart is wider than Quarto's body column (752 px: the ELU explorer's legend
    was cut off)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright's Python package (dev extra)")
    requests, errors = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find("chromium"), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else (requests.append(route.request.url), route.abort()))  # fmt: skip
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.goto(html_page.as_uri())
            page.wait_for_function(f"document.querySelectorAll('.vega-chart svg').length >= {len(CHART_CELLS)}",
                                   timeout=120_000)  # fmt: skip
            charts = page.evaluate("""[...document.querySelectorAll('.vega-chart')].map(div => {
                const svg = div.querySelector('svg');
                return [div.id, svg ? Number(svg.getAttribute('width')) : 0, div.querySelectorAll('path').length];
            })""")
        finally:
            browser.close()
    assert len(charts) >= len(CHART_CELLS) and not requests and not errors, (requests, errors)
    for div_id, width, paths in charts:
        assert paths > 3 and 0 < width <= QUARTO_COLUMN_PX, (div_id, width, paths)


def test_no_progress_bars_leak_into_the_document(full_report) -> None:
    streams = "".join(
        output.get("text", "") for cell in full_report.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "stream"
    )  # fmt: skip
    assert "Downloading artifacts" not in streams
    # a tqdm bar of any kind: "45%|####5     | 9/20 [00:01<00:01, 8.31it/s]" or "... 120batch/s"
    assert not re.search(r"\d+%\||\|\s*\d+/\d+ \[|\d(?:it|batch|s)/s\b|s/it\b", streams), streams[-2000:]


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


# The teacher's class view: one chunk writes it whole (heading and prose through the catalogue),
# and only for an admin of a class server; tests/test_class_server.py checks its content.
GENERATED_SECTION = "_11-class.qmd"


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
    if path.name not in ("index.qmd", GENERATED_SECTION):
        assert walk(document["blocks"], "Math"), "each section has mathematics"
    for table in walk(document["blocks"], "Table"):  # Quarto keeps only a labelled table's caption in Typst
        assert table["c"][0][0].startswith("tbl-") and walk(table["c"][1], "Str"), table["c"][0]


def test_index_front_matter_and_includes() -> None:
    document = pandoc_json(INDEX.read_text())
    assert "date" in document["meta"]
    # The title page is the project's, per edition (a document's own would override the profile's).
    for config in ("_quarto.yml", "_quarto-ru.yml"):
        assert {"title", "subtitle", "abstract"} <= set(yaml.safe_load((REPORT / config).read_text())), config
    includes = re.findall(r"\{\{< include (\S+) >\}\}", INDEX.read_text())
    assert [(REPORT / name).is_file() for name in includes] == [True] * 11  # sections 1-10, the class (11)


def test_quarto_project_formats() -> None:
    config = yaml.safe_load((REPORT / "_quarto.yml").read_text())
    meta = pandoc_json("---\n" + (REPORT / "_quarto.yml").read_text() + "\n---\n")["meta"]
    assert set(meta) >= {"project", "format", "execute"}
    html, typst = config["format"]["html"], config["format"]["typst"]
    assert html["html-math-method"] == "mathml" and html["embed-resources"] is True
    assert typst is not None and config["execute"]["echo"] is False
    # The sidebar links the PDF as "PDF", never by the format's name "Typst": a {format, text}
    # entry, and a plain format name so that Quarto adds no link of its own (quarto-cli 9606)
    links = html["format-links"]
    assert [link for link in links if isinstance(link, dict)] == [{"format": "typst", "text": "PDF", "icon": "file-pdf"}]
    assert [link for link in links if isinstance(link, str)] == ["html"]
    assert "format-links" not in yaml.safe_load((REPORT / "_quarto-ru.yml").read_text()).get("format", {}).get("html", {})
    assert (REPORT / html["css"]).is_file()
    assert config["project"]["render"] == ["index.qmd"]


# Every chunk that draws an image in the PDF (a chart or a run's PNG).
IMAGE_CELLS = (*CHART_CELLS, "baseline-samples")


@pytest.mark.parametrize("path", sorted(REPORT.glob("_*.qmd")), ids=lambda p: p.name)
def test_no_image_chunk_comes_right_under_a_heading(path: Path) -> None:
    """A heading keeps only a few lines of room under it (index.qmd's heading rule): a chart right
    under it that did not fit moved alone to the next page and left the heading at the page's
    foot. Each image chunk has a sentence of prose between it and its heading, in both editions."""
    for profiles in (set(), {"ru"}):
        blocks = select_content(pandoc_json(path.read_text()), profiles, "typst")["blocks"]
        for before, block in zip(blocks, blocks[1:]):
            label = re.match(r"#\| label: ([a-z0-9-]+)", block["c"][1]) if block["t"] == "CodeBlock" else None
            if label and label.group(1) in IMAGE_CELLS:
                assert before["t"] != "Header", (sorted(profiles), label.group(1))


# --- wording (issue 22, item 10) -----------------------------------------------------------


def test_ratios_near_one_read_as_about_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """"1.0 times larger", "1.00 times its parameters" and "1.4 s of training against 1.4 s" said
    nothing or compared two different numbers as equal."""
    from reporting.sections.sweep import distinct, parameters_phrase
    from reporting.study_findings import gradient_sentence

    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    monkeypatch.delenv("ANNCORE_REPORT_LANG", raising=False)
    norms = pd.DataFrame({"arm": ["sigmoid", "relu"], "layer": "layer1", "grad_norm": [0.104, 0.1]})
    assert "averages 0.104, about the same as under **ReLU**" in gradient_sentence(norms)
    assert "1.3 times larger than" in gradient_sentence(norms.assign(grad_norm=[0.13, 0.1]))
    assert parameters_phrase(1000, 1000) == "the same number of parameters"
    assert parameters_phrase(1001, 1000) == "about as many parameters"
    assert parameters_phrase(730, 1000) == "0.73 times its parameters"
    assert distinct(1.41, 1.44) == ("1.41", "1.44") and distinct(0.8, 1.6) == ("0.8", "1.6")


@pytest.mark.parametrize(("rate", "shown"), [(90.58, "91 trials"), (80.4, "80 trials"), (2.45, "2.5 trials"), (0.5, "0.5 trials")])
def test_search_pace_is_rounded_to_what_it_means(monkeypatch: pytest.MonkeyPatch, rate: float, shown: str) -> None:
    from reporting.sections.sweep import speed_sentence

    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    monkeypatch.delenv("ANNCORE_REPORT_LANG", raising=False)
    text = speed_sentence({"trials_this_invocation": 4, "search_wall_s": 3.2, "workers": 1, "trials_per_minute": rate})
    assert text == f"Its latest invocation ran 4 trials in 3 s with 1 worker: {shown} per minute."


def test_elu_table_writes_whole_numbers_without_zeros() -> None:
    """The ELU table said "2.000000" for ELU(2)."""
    from reporting.sections.activations import elu_values

    rows = [line for line in elu_values().data.splitlines() if line.startswith("|") and "---" not in line][1:]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert [row[0] for row in cells] == ["-2", "-1", "0", "1", "2"]
    assert cells[-1] == ["2", "2", "1"] and cells[2] == ["0", "0", "1"]
    assert all(len(cell.split(".")[-1]) <= 6 for row in cells for cell in row)
