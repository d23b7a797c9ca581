"""What a report chunk displays: Markdown, charts that suit both HTML and PDF, images, tables.

Every output is ``text/markdown`` (or a plain ``image/png``), never ``text/html`` or
``application/javascript``: Quarto adds require.js and jQuery from a CDN to the HTML as soon as
any display output carries one of those two MIME types (``extractJupyterWidgetDependencies`` in
quarto-cli's ``src/core/jupyter/widgets.ts``), which breaks the page offline. Quarto takes
``text/markdown`` first for every format except HTML, and for HTML right after the HTML types
(``displayDataMimeType`` in ``src/core/jupyter/display-data.ts``), so one Markdown output reaches
both formats.

How a chart reaches both formats: :class:`ChartOutput` is one Markdown output holding two raw
blocks. A ```` ```{=html} ```` block carries the interactive Vega-Lite fragment, and a
```` ```{=typst} ```` block places a PNG rendering (vl-convert) that the chunk writes under
``_chart_images/`` beside the document (the chunk's working directory). Pandoc keeps a raw block
only in its own format, so the HTML gets the chart and the PDF the image, from one chunk with no
format conditions. The Vega JavaScript comes the same way, once, from :class:`VegaScripts`.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import altair as alt
import pandas as pd
from IPython import get_ipython
from IPython.display import Markdown

from experiments.charts.export import chart_html_fragment, inline_vega_scripts, to_png
from reporting.i18n import language


# Where chart PNGs for the PDF go, relative to the chunk's working directory (the document's folder).
CHART_IMAGE_DIR = Path("_chart_images")
PNG_SCALE = 2
# Typst: 1 CSS pixel is 0.75 pt; a chart is never drawn wider than the text column.
PT_PER_PX = 0.75
# Quarto's HTML body column is at most 800px - 3em = 752 px wide ($grid-body-column in quarto-cli's
# _bootstrap-variables.scss); a wider chart is cut at the column's edge (it scrolls). Charts
# wider than this get their legends below the plot instead of beside it.
COLUMN_WIDTH_PX = 720
# A chart's HTML element id begins with this; the report's chunk labels never do (tests/test_report.py).
CHART_ID_PREFIX = "chart-"
# The tallest an image is set in the PDF: under 40 % of A4's text height with 2 cm margins (728 pt).
MAX_IMAGE_HEIGHT_PT = 280
# d3-format locales of the editions whose numbers differ from English: a chart's axis labels,
# legends, tooltips and format() expressions follow the prose (Russian: 0,1 and 8 226).
FORMAT_LOCALES: dict[str, dict[str, Any]] = {
    "ru": {"decimal": ",", "thousands": "\u00a0", "grouping": [3], "currency": ["", "\u00a0₽"]},
}
# A table's label (and HTML element id) begins with this: Quarto's cross-reference prefix for tables.
TABLE_ID_PREFIX = "tbl-"


def raw_block(format_name: str, content: str) -> str:
    """A pandoc raw block (```` ```{=html} ````, ```` ```{=typst} ````) holding ``content`` verbatim.

    The fence is longer than any run of backticks inside ``content``, so it cannot close early.
    """
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{{={format_name}}}\n{content}\n{fence}\n"


def typst_string(text: str) -> str:
    """``text`` as a Typst string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG (from its IHDR chunk)."""
    return struct.unpack(">II", png[16:24])


@dataclass(frozen=True)
class ChartOutput:
    """An Altair chart shown interactively in HTML and as a PNG in the PDF, as one Markdown output.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        The chart.
    div_id : str
        Its name, unique within the document: the PNG's file name, and after :data:`CHART_ID_PREFIX`
        its HTML element id (:attr:`element_id`).
    alt_text : str
        A short description: the ``text/plain`` representation and the PDF image's alt text.
    caption : str
        Markdown under the chart (the runs it came from), kept with it (:func:`figure_markdown`).
    """

    chart: alt.TopLevelMixin
    div_id: str
    alt_text: str
    caption: str = ""

    @property
    def element_id(self) -> str:
        """The chart's HTML element id: ``chart-`` and its name.

        Quarto gives each chunk's output the chunk label as element id; a chart whose id equalled
        its chunk's label (or another chunk's) was a duplicate id, and the browser drew the chart
        into the first element with it (a table's chunk). No chunk label starts with ``chart-``.
        """
        return CHART_ID_PREFIX + self.div_id

    def fitted(self) -> tuple[alt.TopLevelMixin, bytes]:
        """The chart as shown, fitted to the report's column, and its PNG.

        A chart wider than :data:`COLUMN_WIDTH_PX` (two panels and a legend, say) gets its
        legends below the plot; the width is vl-convert's, the same Vega layout the browser runs.
        """
        png = to_png(self.chart, scale=PNG_SCALE, format_locale=chart_format_locale())
        if png_size(png)[0] / PNG_SCALE <= COLUMN_WIDTH_PX:
            return self.chart, png
        chart = self.chart.configure_legend(orient="bottom", direction="horizontal")
        return chart, to_png(chart, scale=PNG_SCALE, format_locale=chart_format_locale())

    def write_png(self, png: bytes) -> Path:
        """Write the PNG for the PDF (:func:`write_image`); return its relative path."""
        return write_image(self.div_id, png)

    def typst_image(self, path: Path) -> str:
        """Typst code placing the PNG at the chart's size in CSS pixels (:func:`typst_image`)."""
        width, height = png_size(path.read_bytes())
        return typst_image(path, width / PNG_SCALE, height / PNG_SCALE, self.alt_text)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        chart, png = self.fitted()
        html = chart_html_fragment(chart, self.element_id, chart_format_locale())
        typst = self.typst_image(self.write_png(png))
        return {"text/markdown": figure_markdown(html, typst, self.caption), "text/plain": self.alt_text}


def chart_format_locale() -> dict[str, Any] | None:
    """The edition's d3-format locale for charts (:data:`FORMAT_LOCALES`), or None for English."""
    return FORMAT_LOCALES.get(language())


def write_image(name: str, png: bytes) -> Path:
    """Write a PNG for the PDF into ``_chart_images/<profile>/<name>.png``; return that relative path.

    One folder per Quarto profile (``QUARTO_PROFILE``, e.g. ``ru``; ``default`` without one),
    so that two editions rendered at once do not overwrite each other's images.
    """
    profile = re.sub(r"[^A-Za-z0-9_-]+", "-", os.environ.get("QUARTO_PROFILE", "")) or "default"
    path = CHART_IMAGE_DIR / profile / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def typst_image(path: Path, width_px: float, height_px: float, alt_text: str) -> str:
    """Typst code setting an image of ``width_px`` x ``height_px`` CSS pixels at that size, shrunk
    to the text width and to :data:`MAX_IMAGE_HEIGHT_PT`, centred."""
    width_pt = min(width_px * PT_PER_PX, MAX_IMAGE_HEIGHT_PT * width_px / height_px)
    image = f"image({typst_string(path.as_posix())}, width: {width_pt:.1f}pt, alt: {typst_string(alt_text)})"
    return f"#align(center, block(width: 100%, {image}))"


def figure_markdown(html_block: str, typst_block: str, caption: str) -> str:
    """One Markdown output: an image (``html_block`` for HTML, ``typst_block`` for the PDF) and under
    it ``caption`` (Markdown: the runs it came from), kept together.

    In the PDF the two float (Typst's ``place(auto, float: true)``, LaTeX's ``[tp]``): at the top or
    the bottom of the page, or on the next one when they do not fit, while the text goes on. An
    image in the flow that did not fit moved whole to the next page and left a third of this one
    blank; shrinking it to the room left (measured with ``locate``) made every image's size depend
    on the ones before, and typst stopped after five passes without converging. A float escapes
    to the page only from the top level of the document, so the report's chunks emit their output
    with ``output: asis`` (``_quarto.yml``), which Quarto writes with no enclosing cell block, and
    :class:`Outputs` makes one output of a chunk's parts (Quarto wraps a chunk of several outputs
    in a labelled block). The caption is formatted as a :class:`Markdown` output (:func:`part_markdown`).
    """
    opening = "#place(auto, float: true, clearance: 1.5em, block(width: 100%, breakable: false)[\n" + typst_block
    parts = [raw_block("html", html_block), raw_block("typst", opening)]
    if caption:  # shown as a Markdown output of its own would be: with the edition's typography
        parts.append(part_markdown(Markdown(caption)).strip() + "\n")
    parts.append(raw_block("typst", "])"))
    return "\n".join(parts)


@dataclass(frozen=True)
class PngOutput:
    """A PNG (a run's artifact) shown inline in HTML and from a file in the PDF, at a size that fits.

    One Markdown output, as :class:`ChartOutput` (an ``image/png`` output went to the PDF at its
    pixel size: the training-image grid filled a page); the ``image/png`` stays in the bundle for
    notebooks.

    Parameters
    ----------
    png : bytes
        The image.
    name : str
        Its file name under ``_chart_images/`` (unique within the document).
    alt_text : str
        A short description: the image's alt text.
    caption : str
        Markdown under the image, kept with it (:func:`figure_markdown`).
    """

    png: bytes
    name: str
    alt_text: str
    caption: str = ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = base64.b64encode(self.png).decode("ascii")
        width, height = png_size(self.png)
        alt = html.escape(self.alt_text, quote=True)
        img = f'<img src="data:image/png;base64,{data}" alt="{alt}" style="max-width: 100%; height: auto;">'
        typst = typst_image(write_image(self.name, self.png), width, height, self.alt_text)
        return {"text/markdown": figure_markdown(img, typst, self.caption), "image/png": data,
                "text/plain": self.alt_text}  # fmt: skip


class VegaScripts:
    """The Vega, Vega-Lite and vega-embed JavaScript, inlined once per HTML document.

    A raw HTML block in a Markdown output (see the module docstring for why not ``text/html``);
    other formats drop it.
    """

    def _repr_markdown_(self) -> str:
        return raw_block("html", inline_vega_scripts())


def png_image(data: bytes, name: str, alt_text: str, caption: str = "") -> PngOutput:
    """A PNG (an artifact's bytes) as a display object (:class:`PngOutput`), ``caption`` under it."""
    if not isinstance(data, bytes) or not data.startswith(b"\x89PNG"):
        raise ValueError(f"expected the bytes of a PNG file; got {type(data).__name__} {data[:8]!r}")
    return PngOutput(data, name, alt_text, caption)


# A table's width budget in characters (A4, 2 cm margins: about 17 cm of text, tables at 0.85 em:
# index.qmd's Typst rule), and each cell's padding (Typst's cell inset) counted as characters.
TABLE_WIDTH_CHARS = 96
CELL_PADDING_CHARS = 3
# A table with more body rows than this may break across PDF pages.
BREAKABLE_TABLE_ROWS = 6
# Inline code is set in a monospace font whose characters are wider than the text's on average.
CODE_CHAR_WIDTH = 1.15


def _text_width(markdown_text: str) -> float:
    """About how many body-text characters wide ``markdown_text`` is when set."""
    width = 0.0
    for piece in re.split(r"(`[^`]*`)", markdown_text):
        if piece.startswith("`"):
            width += CODE_CHAR_WIDTH * (len(piece) - 2)
        else:
            width += len(piece.replace("**", "").replace("*", ""))
    return width


def minimum_widths(rows: list[list[str]]) -> list[float]:
    """Per column, the width of its longest unbreakable piece (a word or a code span) plus padding."""
    return [
        max(_text_width(word) for cell in column for word in (re.findall(r"`[^`]*`|[^\s`]+", cell) or [""]))
        + CELL_PADDING_CHARS
        for column in zip(*rows)
    ]


def column_widths(rows: list[list[str]]) -> list[int]:
    """Relative column widths (in characters) that keep every cell's longest unbreakable piece inside its column.

    A line breaks only at spaces (code spans, run ids and ``784-128-64-10`` do not break), so a
    column is at least as wide as its longest word; the width left in :data:`TABLE_WIDTH_CHARS`
    goes to the columns in proportion to how much longer their longest cell is than that.
    """
    columns = list(zip(*rows))
    natural = [max(_text_width(cell) for cell in column) + CELL_PADDING_CHARS for column in columns]
    minimum = minimum_widths(rows)
    spare = TABLE_WIDTH_CHARS - sum(minimum)
    stretch = sum(n - m for n, m in zip(natural, minimum))
    if sum(natural) <= TABLE_WIDTH_CHARS or spare <= 0 or stretch <= 0:
        widths = natural if sum(natural) <= TABLE_WIDTH_CHARS else minimum
    else:
        widths = [m + spare * (n - m) / stretch for n, m in zip(natural, minimum)]
    return [max(3, round(w)) for w in widths]


def markdown_table(frame: pd.DataFrame, caption: str, name: str) -> str:
    """A DataFrame as a Markdown pipe table (index dropped), captioned and labelled ``tbl-<name>``.

    Format the numbers in ``frame`` first: values are written as they are. The label matters:
    Quarto drops the caption of an unlabelled table from the Typst output (quarto-cli issue
    11733), and labels it "Table N" in both formats. The separator line carries
    :func:`column_widths` as its dashes. A table too wide for one line of source (72
    characters) gets, from pandoc (and Quarto), the full text width split in those proportions;
    left to the PDF's table layout, code-formatted names and run ids ran into the next column.
    A narrower table keeps its natural widths. A table whose longest words alone are wider than
    the page (ten columns, say) is set in the PDF at the smaller text size that fits them, in a
    Typst block around it (raw Typst, which other formats drop).
    """
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", name):
        raise ValueError(f"a table's name is lower-case letters and digits joined by '-', got {name!r}")
    header = [str(column) for column in frame.columns]
    body = [["" if pd.isna(value) else str(value).replace("|", "\\|") for value in row] for row in frame.itertuples(index=False)]
    widths = column_widths([header, *body])
    shrink = TABLE_WIDTH_CHARS / sum(minimum_widths([header, *body]))
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":" + "-" * w for w in widths) + "|",
        *("| " + " | ".join(row) + " |" for row in body),
    ]
    table = "\n".join(lines) + f"\n\n: {caption} {{#{TABLE_ID_PREFIX}{name}}}\n"
    rules = []
    if shrink < 1:
        rules.append(f"#set text(size: {max(0.6, math.floor(shrink * 100) / 100)}em)")
    if len(body) > BREAKABLE_TABLE_ROWS:
        # A captioned table is a figure, which Typst keeps whole: a long one moved to the next page
        # and left this one half empty. A short one stays whole (its caption with its rows).
        rules.append("#show figure: set block(breakable: true)")
    if rules:
        table = raw_block("typst", "#[" + "\n".join(rules)) + "\n" + table + "\n" + raw_block("typst", "]")
    return table


class Outputs:
    """Several display objects shown in order by one chunk (``None`` parts are skipped), as one
    Markdown output.

    Quarto wraps a chunk with several outputs in a block labelled with the chunk's label, from
    which a figure cannot float in the PDF (:func:`figure_markdown`); a chunk of one output with
    ``output: asis`` gets no block at all. Every part has a Markdown form (Markdown text,
    :class:`ChartOutput`, :class:`PngOutput`, a Markdown table).
    """

    def __init__(self, *parts: Any) -> None:
        self.parts = [part for part in parts if part is not None]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def markdown(self) -> str:
        """The parts' Markdown, in order, one block after another."""
        return "\n".join(part_markdown(part).rstrip("\n") + "\n" for part in self.parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/markdown": self.markdown(), "text/plain": f"<{len(self.parts)} report outputs>"}


def part_markdown(part: Any) -> str:
    """The Markdown form of one display object, as IPython would show it on its own.

    Through the kernel's display formatter where there is one, so a :class:`Markdown` part gets
    the edition's typography (:func:`reporting.typography.use_edition_typography`); else its
    ``_repr_mimebundle_``'s or ``_repr_markdown_``'s ``text/markdown``, or a :class:`Markdown`'s text.
    """
    shell = get_ipython()
    if shell is not None:
        data, _ = shell.display_formatter.format(part)
        if "text/markdown" in data:
            return data["text/markdown"]
    elif isinstance(part, Markdown):
        return part.data
    elif hasattr(part, "_repr_mimebundle_") and "text/markdown" in (bundle := part._repr_mimebundle_()):
        return bundle["text/markdown"]
    elif hasattr(part, "_repr_markdown_"):
        return part._repr_markdown_()
    raise TypeError(f"a report output needs a Markdown form; got {type(part).__name__}: {part!r:.80}")


def flags_as_code(text: str) -> str:
    """``text`` with every command-line flag (``--lr``, ``--hidden-sizes``) as inline code.

    Outside code, pandoc's smart punctuation turns ``--`` into an en dash, so a copied
    ``–lr`` would not work; flags already inside backticks are left alone.
    """
    pieces = re.split(r"(`[^`]*`)", text)
    return "".join(
        piece if piece.startswith("`") else re.sub(r"(?<![\w-])(--[A-Za-z][\w-]*)", r"`\1`", piece)
        for piece in pieces
    )


def markdown(text: str) -> Markdown:
    """Markdown text (with ``$...$`` math) as a display object."""
    return Markdown(text)
