"""reporting.display: one chart output that suits both HTML (interactive) and PDF (PNG), and
Markdown tables that pandoc reads as tables."""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import subprocess
from pathlib import Path

import altair as alt
import pandas as pd
import pypandoc
import pytest
from IPython.display import Markdown
from PIL import Image

from experiments.charts.export import to_png
from tests.external_tools import requires
from reporting.display import (
    BREAKABLE_TABLE_ROWS, COLUMN_WIDTH_PX, FORMAT_LOCALES, MAX_IMAGE_HEIGHT_PT, ChartOutput, Outputs, VegaScripts, flags_as_code, markdown_table, png_image, raw_block,
)


@pytest.fixture(scope="module")
def chart() -> alt.Chart:
    data = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.3]})
    return alt.Chart(data).mark_line().encode(x="epoch:Q", y="loss:Q").properties(width=300, height=120)


def test_chart_output_is_markdown_with_an_html_block_and_a_typst_image(chart, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the PNG goes to _chart_images/ beside the document, i.e. the cwd
    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    bundle = ChartOutput(chart, "loss-chart", "Loss per epoch")._repr_mimebundle_()
    assert set(bundle) == {"text/markdown", "text/plain"}  # no text/html: Quarto would add require.js
    markdown = bundle["text/markdown"]
    document = json.loads(pypandoc.convert_text(markdown, "json", format="markdown"))
    (html, typst, closing) = [block["c"] for block in document["blocks"]]
    assert html[0] == "html" and typst[0] == "typst" and closing == ["typst", "])"]
    assert typst[1].startswith("#place(auto, float: true")  # the image and its caption float together
    assert '<div class="vega-chart" id="chart-loss-chart"></div>' in html[1]
    spec, _ = json.JSONDecoder().raw_decode(html[1].split('getElementById("chart-loss-chart"), ', 1)[1])
    assert spec["mark"]["type"] == "line" and '"loss": 0.3' in json.dumps(spec)
    assert 'image("_chart_images/default/loss-chart.png"' in typst[1] and 'alt: "Loss per epoch"' in typst[1]
    png = (tmp_path / "_chart_images" / "default" / "loss-chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 2 * 300 and height > 2 * 120  # scale 2, plus axes and padding
    assert f"{width / 2 * 0.75:.1f}pt" in typst[1]  # its natural size, at most the text width
    assert bundle["text/plain"] == "Loss per epoch"
    # Each format keeps only its own block.
    assert "vegaEmbed" not in pypandoc.convert_text(markdown, "typst", format="markdown")
    assert "_chart_images" not in pypandoc.convert_text(markdown, "html", format="markdown")



@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_charts_numbers_follow_the_editions_decimal_mark(tmp_path, monkeypatch, lang: str) -> None:
    """The Russian edition's charts wrote "0.1" and "α = 1.00" beside prose with decimal commas:
    vega-embed (HTML) and vl-convert (PNG) get the edition's d3-format locale."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    monkeypatch.setenv("ANNCORE_REPORT_LANG", lang)
    data = pd.DataFrame({"x": [0.1, 0.25, 0.5], "y": [1.5, 2.5, 3.0]})
    title = alt.TitleParams(text={"expr": "'α = ' + format(1, '.2f')"})
    chart = alt.Chart(data).mark_line().encode(x="x:Q", y="y:Q").properties(width=200, height=100, title=title)
    markdown = ChartOutput(chart, "decimals", "decimals")._repr_mimebundle_()["text/markdown"]
    call = markdown.split('getElementById("chart-decimals"), ', 1)[1]
    _, end = json.JSONDecoder().raw_decode(call)
    options, _ = json.JSONDecoder().raw_decode(call[end + 2 :])
    png = (tmp_path / "_chart_images" / "default" / "decimals.png").read_bytes()
    if lang == "ru":
        assert options["formatLocale"] == FORMAT_LOCALES["ru"] and FORMAT_LOCALES["ru"]["decimal"] == ","
        assert png == to_png(chart, scale=2, format_locale=FORMAT_LOCALES["ru"]) != to_png(chart, scale=2)
    else:
        assert "formatLocale" not in options and png == to_png(chart, scale=2)

def test_a_chart_wider_than_the_column_gets_its_legend_below(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = pd.DataFrame({"x": [1, 2], "y": [1, 2], "series": ["a very long legend entry", "b"]})
    line = alt.Chart(data).mark_line().encode(x="x:Q", y="y:Q", color="series:N").properties(width=300)
    wide = ChartOutput(alt.hconcat(line, line), "wide", "two panels")
    fitted, png = wide.fitted()
    assert struct.unpack(">II", png[16:24])[0] / 2 <= COLUMN_WIDTH_PX < struct.unpack(">II", to_png(wide.chart)[16:24])[0] / 2
    assert fitted.to_dict()["config"]["legend"]["orient"] == "bottom"
    narrow = ChartOutput(line.properties(width=200), "narrow", "one panel")
    assert narrow.fitted()[0] is narrow.chart


def test_raw_block_fence_outlasts_backticks_inside() -> None:
    block = raw_block("html", "<script>const s = `a ```` b`;</script>")
    assert block.startswith("`````{=html}\n") and block.endswith("\n`````\n")
    (raw,) = json.loads(pypandoc.convert_text(block, "json", format="markdown"))["blocks"]
    assert raw["c"] == ["html", "<script>const s = `a ```` b`;</script>"]


def test_flags_become_inline_code() -> None:
    text = "your own architecture: --hidden-sizes, --dropout, --lr; `--quick` stays, 3--5 too"
    assert flags_as_code(text) == (
        "your own architecture: `--hidden-sizes`, `--dropout`, `--lr`; `--quick` stays, 3--5 too"
    )
    html = pypandoc.convert_text(flags_as_code(text), "html", format="markdown")
    assert "–" not in html.replace("3–5", "")


def test_vega_scripts_define_vega_embed_inline() -> None:
    markdown = VegaScripts()._repr_markdown_()
    (raw,) = json.loads(pypandoc.convert_text(markdown, "json", format="markdown"))["blocks"]
    assert raw["t"] == "RawBlock" and raw["c"][0] == "html"
    html = raw["c"][1]
    assert html.startswith("<script") and "vegaEmbed" in html and "src=" not in html.split(">", 1)[0]


def test_markdown_table_is_a_labelled_pandoc_table_with_caption() -> None:
    """Labelled ``tbl-...``: Quarto keeps only a labelled table's caption in Typst (quarto-cli 11733)."""
    frame = pd.DataFrame({"class": ["Bag", "Coat"], "accuracy": ["97.10%", "73.20%"]})
    text = markdown_table(frame, "Per-class accuracy (MLflow run `abcd1234`)", "per-class")
    document = json.loads(pypandoc.convert_text(text, "json", format="markdown"))
    (table,) = [block for block in document["blocks"] if block["t"] == "Table"]
    assert table["c"][0][0] == "tbl-per-class"
    caption = json.dumps(table["c"][1])
    assert "abcd1234" in caption and "{#" not in caption
    body_rows = table["c"][4][0][3]
    assert len(body_rows) == 2
    typst = pypandoc.convert_text(text, "typst", format="markdown")
    assert re.search(r"caption: \[Per-class accuracy \(MLflow run `abcd1234`\)\]", typst) and "<tbl-per-class>" in typst
    for bad in ("Per class", "tbl_x", ""):
        with pytest.raises(ValueError, match="a table's name is lower-case letters and digits joined by '-'"):
            markdown_table(frame, "caption", bad)


def test_wide_table_columns_fit_their_longest_words() -> None:
    """The separator's dashes set the PDF's column widths: each column holds its longest code span
    or word, and a table too wide even so is set smaller in Typst."""
    frame = pd.DataFrame({
        "experiment": ["`hand_calculations`", "`activation_study`"],
        "run": ["`133c0dac`", "`e1fd9d21`"],
        "what it shows": ["traces of the worked examples, checked against torch autograd " * 2, "TO-DO 4.2"],
    })  # fmt: skip
    text = markdown_table(frame, "Experiments", "experiments")
    widths = [len(cell) for cell in text.splitlines()[1].strip("|").split("|")]
    assert widths[0] >= 1.15 * len("hand_calculations") + 2 and widths[1] >= 1.15 * 8 + 2
    document = json.loads(pypandoc.convert_text(text, "json", format="markdown"))
    (table,) = [block for block in document["blocks"] if block["t"] == "Table"]
    relative = [spec[1]["c"] for spec in table["c"][2]]  # ColWidth fractions, in the dashes' proportions
    assert abs(sum(relative) - 1) < 0.01 and relative[0] > relative[1]
    wide = markdown_table(pd.DataFrame({f"c{i}": ["`anncore_mlflow_over_anncore`"] for i in range(8)}), "Wide", "wide")
    typst = pypandoc.convert_text(wide, "typst", format="markdown")
    assert "#[#set text(size: 0.6em)" in typst and typst.rstrip().endswith("]")
    assert "#set text" not in pypandoc.convert_text(wide, "html", format="markdown")


def test_png_image_rejects_other_bytes() -> None:
    with pytest.raises(ValueError, match="expected the bytes of a PNG file; got bytes"):
        png_image(b"GIF89a....", "x", "x")


def test_png_image_is_inline_in_html_and_at_most_half_a_page_in_the_pdf(tmp_path, monkeypatch) -> None:
    """A tall artifact (the training-image grid, 656 x 906 px) went to the PDF at its pixel size and filled a page."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    buffer = io.BytesIO()
    Image.new("RGB", (656, 906), "white").save(buffer, format="PNG")
    bundle = png_image(buffer.getvalue(), "samples", "Training images")._repr_mimebundle_()
    html, typst, _ = raw_blocks = [block["c"][1] for block in json.loads(
        pypandoc.convert_text(bundle["text/markdown"], "json", format="markdown"))["blocks"]]  # fmt: skip
    assert html.startswith('<img src="data:image/png;base64,') and 'alt="Training images"' in html
    assert base64.b64decode(bundle["image/png"]) == buffer.getvalue() and len(raw_blocks) == 3
    width = float(re.search(r"image\([^)]*width: ([\d.]+)pt", typst).group(1))
    assert abs(width * 906 / 656 - MAX_IMAGE_HEIGHT_PT) < 0.2 and (tmp_path / "_chart_images/default/samples.png").is_file()


def test_outputs_skip_missing_parts() -> None:
    assert len(Outputs("a", None, "b")) == 2 and list(Outputs(None)) == []


def test_outputs_are_one_markdown_output_of_their_parts_in_order(chart, tmp_path, monkeypatch) -> None:
    """Quarto wraps a chunk of several outputs in a labelled block, from which a chart cannot float
    in the PDF: a chunk's parts (Markdown, charts, nested Outputs) make one Markdown output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    outputs = Outputs(Markdown("Before."), ChartOutput(chart, "loss", "Loss", caption="*Source: run `ab`.*"),
                      Outputs(Markdown("After.")))  # fmt: skip
    bundle = outputs._repr_mimebundle_()
    blocks = json.loads(pypandoc.convert_text(bundle["text/markdown"], "json", format="markdown"))["blocks"]
    kinds = [block["t"] if block["t"] != "RawBlock" else block["c"][0] for block in blocks]
    assert kinds == ["Para", "html", "typst", "Para", "typst", "Para"]
    assert pypandoc.convert_text(bundle["text/markdown"], "plain", format="markdown").split() == ["Before.", "Source:", "run", "ab.", "After."]
    with pytest.raises(TypeError, match="needs a Markdown form; got int: 3"):
        Outputs(3)._repr_mimebundle_()


def test_only_a_long_table_may_break_across_pdf_pages() -> None:
    """A captioned table is a Typst figure, kept whole: a long one (the 16 sample predictions) moved to
    the next page and left half a page blank; a short one stays whole, its caption with its rows."""
    long, short = (pd.DataFrame({"#": [str(i) for i in range(n)], "class": ["Bag"] * n}) for n in (BREAKABLE_TABLE_ROWS + 1, 3))
    typst = [pypandoc.convert_text(markdown_table(frame, "Rows", "rows"), "typst", format="markdown") for frame in (long, short)]
    assert "#show figure: set block(breakable: true)" in typst[0] and "caption: [Rows]" in typst[0]
    assert "breakable" not in typst[1] and "caption: [Rows]" in typst[1]


# --- the PDF's page layout, compiled by typst ----------------------------------------------

INDEX = Path(__file__).resolve().parent.parent / "report" / "index.qmd"


def index_typst_rules() -> str:
    """The raw Typst block of ``report/index.qmd`` (the PDF's table, equation and heading rules)."""
    (block,) = re.findall(r"^```\{=typst\}\n(.*?)^```$", INDEX.read_text(), re.S | re.M)
    return block


def compiled_pages(typ: str, folder: Path) -> list[str]:
    """``typ`` compiled by the venv's typst in ``folder`` (A4, 2 cm margins): each page's text."""
    import typst

    source = folder / "doc.typ"
    source.write_text('#set page(paper: "a4", margin: (x: 2cm, y: 2cm))\n' + typ)
    _, warnings = typst.compile_with_warnings(str(source), output=str(folder / "doc.pdf"), root=str(folder))
    assert not warnings, warnings  # e.g. typst's 'layout did not converge within 5 attempts'
    text = subprocess.run(["pdftotext", "-layout", str(folder / "doc.pdf"), "-"], capture_output=True, text=True, check=True)
    return text.stdout.split("\f")[:-1]


@requires("pdftotext")
@pytest.mark.parametrize(("space_above_pt", "stays"), [(300, True), (530, False)])
def test_an_image_floats_with_its_caption_and_the_text_goes_on(tmp_path, monkeypatch, space_above_pt: int, stays: bool) -> None:
    """A 280 pt chart with room under the text above stays on that page; without room it moves with
    its caption to the next page, and the text after it fills this page instead of leaving it a
    third blank. Nothing is measured, so typst converges (it warned after five passes when each
    image was shrunk to the room its page had left)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUARTO_PROFILE", raising=False)
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), "steelblue").save(buffer, format="PNG")
    markdown = png_image(buffer.getvalue(), "wide", "A chart", caption="*Source: run abcd1234.*")._repr_mimebundle_()["text/markdown"]
    typst = pypandoc.convert_text(markdown, "typst", format="markdown")
    after = " ".join(f"After{i}." for i in range(40))
    pages = compiled_pages(f"#v({space_above_pt}pt)\nText above.\n\n{typst}\n{after}\n", tmp_path)
    assert "Text above." in pages[0] and "After0." in pages[0] and "After39." in pages[0]
    assert ("Source: run abcd1234." in pages[0]) == stays and len(pages) == (1 if stays else 2)
    sizes = [float(w) for w in re.findall(r"width: ([\d.]+)pt", typst)]
    assert sizes == [round(MAX_IMAGE_HEIGHT_PT * 800 / 600, 1)]  # at its height cap, never shrunk to fit


@requires("pdftotext")
def test_a_long_table_repeats_its_header_and_keeps_its_caption_with_its_rows(tmp_path) -> None:
    """Under index.qmd's rules a breakable table's caption (set above it) never ends a page alone,
    its header row repeats on the next page, and no row is split between two pages; table text is
    ragged right and unhyphenated."""
    rules = index_typst_rules()
    assert "#set table.cell(breakable: false)" in rules and "hyphenate: false" in rules and "justify: false" in rules
    rows = max(BREAKABLE_TABLE_ROWS * 3, 36)  # longer than the rest of the first page
    frame = pd.DataFrame({"#": [str(i) for i in range(rows)], "what": [f"row {i} " + ("long " * 300 if i == 5 else "text " * 3) for i in range(rows)]})
    table = pypandoc.convert_text(markdown_table(frame, "Long rows", "long"), "typst", format="markdown")
    for space_above_pt in (480, 600, 660, 676):  # row 5 would straddle pages 1-2; the caption would fit alone
        # pandoc's and Quarto's templates set a table's caption above it
        top = "#show figure.where(kind: table): set figure.caption(position: top)\n"
        pages = compiled_pages(top + rules + f"\n#v({space_above_pt}pt)\nText above.\n\n" + table, tmp_path)
        first = [line.strip() for line in pages[0].splitlines() if line.strip()]
        assert not first[-1].startswith("Table 1"), (space_above_pt, first[-3:])
        assert sum(page.count("what") for page in pages) == len([p for p in pages if "row" in p]) > 1  # the header on every page
        assert [page.count("long") for page in pages if "long" in page] == [300]  # row 5 on one page
