"""reporting.display: one chart output that suits both HTML (interactive) and PDF (PNG), and
Markdown tables that pandoc reads as tables."""

from __future__ import annotations

import base64
import json
import struct

import altair as alt
import pandas as pd
import pypandoc
import pytest

from reporting.display import ChartOutput, Outputs, VegaScripts, markdown_table, png_image


@pytest.fixture(scope="module")
def chart() -> alt.Chart:
    data = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.3]})
    return alt.Chart(data).mark_line().encode(x="epoch:Q", y="loss:Q").properties(width=300, height=120)


def test_chart_output_carries_interactive_html_and_a_png(chart: alt.Chart) -> None:
    bundle = ChartOutput(chart, "loss-chart", "Loss per epoch")._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/png", "text/plain"}
    html = bundle["text/html"]
    assert '<div class="vega-chart" id="loss-chart"></div>' in html
    spec, _ = json.JSONDecoder().raw_decode(html.split('getElementById("loss-chart"), ', 1)[1])
    assert spec["mark"]["type"] == "line" and '"loss": 0.3' in json.dumps(spec)
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 2 * 300 and height > 2 * 120  # scale 2, plus axes and padding
    assert bundle["text/plain"] == "Loss per epoch"


def test_vega_scripts_define_vega_embed_inline() -> None:
    html = VegaScripts()._repr_html_()
    assert html.startswith("<script") and "vegaEmbed" in html and "src=" not in html.split(">", 1)[0]


def test_markdown_table_is_a_pandoc_table_with_caption() -> None:
    frame = pd.DataFrame({"class": ["Bag", "Coat"], "accuracy": ["97.10%", "73.20%"]})
    text = markdown_table(frame, "Per-class accuracy (MLflow run `abcd1234`)")
    document = json.loads(pypandoc.convert_text(text, "json", format="markdown"))
    (table,) = [block for block in document["blocks"] if block["t"] == "Table"]
    caption = json.dumps(table["c"][1])
    assert "abcd1234" in caption
    body_rows = table["c"][4][0][3]
    assert len(body_rows) == 2


def test_png_image_rejects_other_bytes() -> None:
    with pytest.raises(ValueError, match="expected the bytes of a PNG file; got bytes"):
        png_image(b"GIF89a....")
    assert png_image(b"\x89PNG\r\n\x1a\n0000").data[:4] == b"\x89PNG"


def test_outputs_skip_missing_parts() -> None:
    assert len(Outputs("a", None, "b")) == 2 and list(Outputs(None)) == []
