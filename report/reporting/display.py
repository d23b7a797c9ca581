"""What a report chunk displays: Markdown, charts that suit both HTML and PDF, images, tables.

How a chart reaches both formats: :class:`ChartOutput` offers Jupyter two representations in
one display, ``text/html`` (the interactive Vega-Lite fragment) and ``image/png`` (a static
rendering by vl-convert). Quarto picks one per format by its own MIME preference
(``displayDataMimeType`` in quarto-cli's ``src/core/jupyter/display-data.ts``): for HTML
output ``text/html`` comes first; for other formats such as Typst the order is
``text/markdown``, ``image/svg+xml``, ``image/png``, ... and ``text/html`` is used only for
HTML tables. So every chart is a single chunk with no format conditions, cannot show up in
the PDF as the text ``alt.Chart(...)``, and cannot drop out of the HTML. Markdown (text,
tables, math) is ``text/markdown`` only, which every format renders.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterator

import altair as alt
import pandas as pd
from IPython.display import Image, Markdown, display

from experiments.charts.export import chart_html_fragment, inline_vega_scripts, to_png


@dataclass(frozen=True)
class ChartOutput:
    """An Altair chart shown interactively in HTML and as a PNG elsewhere.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        The chart.
    div_id : str
        Its HTML element id, unique within the document.
    alt_text : str
        A short description, the ``text/plain`` representation.
    """

    chart: alt.TopLevelMixin
    div_id: str
    alt_text: str

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        png = base64.b64encode(to_png(self.chart, scale=2)).decode("ascii")
        return {
            "text/html": chart_html_fragment(self.chart, self.div_id),
            "image/png": png,
            "text/plain": self.alt_text,
        }


class VegaScripts:
    """The Vega, Vega-Lite and vega-embed JavaScript, inlined once per HTML document.

    Only ``text/html``: the chunk that shows it sits in a ``.content-visible when-format="html"``
    block, as other formats have no use for it.
    """

    def _repr_html_(self) -> str:
        return inline_vega_scripts()


def png_image(data: bytes) -> Image:
    """A PNG (an artifact's bytes) as a display object."""
    if not isinstance(data, bytes) or not data.startswith(b"\x89PNG"):
        raise ValueError(f"expected the bytes of a PNG file; got {type(data).__name__} {data[:8]!r}")
    return Image(data=data, format="png")


def markdown_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A DataFrame as a Markdown pipe table (index dropped), with an optional caption line.

    Format the numbers in ``frame`` first: values are written as they are.
    """
    table = frame.to_markdown(index=False, disable_numparse=True)
    return f"{table}\n\n: {caption}\n" if caption else f"{table}\n"


class Outputs:
    """Several display objects shown in order by one chunk (``None`` parts are skipped).

    IPython calls ``_ipython_display_`` instead of formatting the object, so each part
    becomes its own output and keeps its own MIME types.
    """

    def __init__(self, *parts: Any) -> None:
        self.parts = [part for part in parts if part is not None]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def _ipython_display_(self) -> None:
        for part in self.parts:
            display(part)


def markdown(text: str) -> Markdown:
    """Markdown text (with ``$...$`` math) as a display object."""
    return Markdown(text)
