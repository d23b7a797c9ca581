"""Save Altair charts as offline HTML, PNG and SVG, all rendered by vl-convert.

Two ways to put charts in HTML:

- ``save_html(chart, path)`` writes one standalone page with the Vega JavaScript inlined;
- ``inline_vega_scripts()`` once per document plus ``chart_html_fragment(chart, div_id)`` per
  chart, for a report that holds many charts but should carry the ~1 MB of JavaScript only once.

The JavaScript comes from ``vl_convert.javascript_bundle``, which defines the globals
``vegaEmbed``, ``vega`` and ``vegaLite`` on ``window``; nothing is fetched from a CDN.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert

# vl-convert names Vega-Lite versions "v6_4"; Altair's schema version is "v6.4.1".
VEGA_LITE_VERSION = "_".join(alt.SCHEMA_VERSION.split(".")[:2])

# SVG so that a headless browser's DOM (and a reader's "save image") holds real vector marks.
EMBED_OPTIONS: dict[str, Any] = {"renderer": "svg"}

_DIV_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's validated Vega-Lite spec as a dict."""
    if not isinstance(chart, alt.TopLevelMixin):
        raise TypeError(
            f"chart must be an Altair top-level chart (alt.Chart, alt.LayerChart, alt.HConcatChart, ...), "
            f"got {type(chart).__name__}: {chart!r:.80}"
        )
    return chart.to_dict(validate=True)


def _script_safe_json(value: Any) -> str:
    """JSON that cannot close the surrounding <script> element early."""
    return json.dumps(value).replace("</", "<\\/").replace("<!--", "<\\!--")


def _prepare_path(path: str | Path) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}: {path!r:.80}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_html(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write a standalone HTML page for ``chart`` that works offline.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        Any top-level Altair chart (single, layered, concatenated, with params).
    path : str or pathlib.Path
        Destination file; parent folders are created.

    Returns
    -------
    pathlib.Path
        The written file. Vega, Vega-Lite and vega-embed are inlined (from vl-convert) and the
        chart renders as SVG.
    """
    _spec(chart)  # type and schema check before anything is written
    path = _prepare_path(path)
    chart.save(str(path), format="html", inline=True, embed_options=EMBED_OPTIONS)
    return path


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render ``chart`` to an SVG document string with vl-convert.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        The chart to render.

    Returns
    -------
    str
        The SVG markup (interactive params take their initial values).
    """
    return vl_convert.vegalite_to_svg(_spec(chart), vl_version=VEGA_LITE_VERSION)


def to_png(chart: alt.TopLevelMixin, scale: float = 2, format_locale: dict[str, Any] | None = None) -> bytes:
    """Render ``chart`` to PNG bytes with vl-convert.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        The chart to render.
    scale : float, default 2
        Pixel scale factor (2 gives crisp images in print and on high-DPI screens).
    format_locale : dict, optional
        A d3-format locale (``{"decimal": ",", "thousands": " ", "grouping": [3], "currency":
        ["", ""]}``) for every number Vega formats: axis labels, legends, tooltips and the
        expressions' ``format()``. Default: d3's English one (decimal point).

    Returns
    -------
    bytes
        The PNG file content.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    locale = {"format_locale": format_locale} if format_locale else {}
    return vl_convert.vegalite_to_png(_spec(chart), vl_version=VEGA_LITE_VERSION, scale=float(scale), **locale)


def save_png(chart: alt.TopLevelMixin, path: str | Path, scale: float = 2) -> Path:
    """Write ``chart`` as a PNG image rendered by vl-convert.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        The chart to render.
    path : str or pathlib.Path
        Destination file; parent folders are created.
    scale : float, default 2
        Pixel scale factor.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    png = to_png(chart, scale=scale)
    path = _prepare_path(path)
    path.write_bytes(png)
    return path


@functools.cache
def inline_vega_scripts() -> str:
    """The ``<script>`` element carrying Vega, Vega-Lite and vega-embed, to emit once per page.

    Returns
    -------
    str
        A ``<script>`` tag (about 1 MB) that defines ``window.vegaEmbed``, ``window.vega`` and
        ``window.vegaLite``; place it before the first ``chart_html_fragment``.
    """
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    # The bundle is a script body; make sure it cannot end the element early.
    bundle = bundle.replace("</script", "<\\/script")
    # Quarto parses "<table" in a raw HTML block as a table ("Unable to parse table from raw html
    # block: skipping" at every render); the tooltip's "<table>" string is written with an escape.
    bundle = re.sub(r"<(t)(able)", lambda m: f"<\\x{ord(m.group(1)):x}{m.group(2)}", bundle, flags=re.I)
    return (
        f'<script type="text/javascript">\n'
        f"// Vega {vl_convert.get_vega_version()}, Vega-Lite {VEGA_LITE_VERSION}, "
        f"vega-embed {vl_convert.get_vega_embed_version()} (bundled by vl-convert)\n"
        f"{bundle}\n</script>"
    )


def chart_html_fragment(chart: alt.TopLevelMixin, div_id: str, format_locale: dict[str, Any] | None = None) -> str:
    """A ``<div>`` and ``<script>`` that draw ``chart`` with the page's ``vegaEmbed``.

    Parameters
    ----------
    chart : altair.TopLevelMixin
        The chart to embed.
    div_id : str
        HTML id for the chart's container: a letter, then letters, digits, ``-`` or ``_``;
        unique within the page.
    format_locale : dict, optional
        A d3-format locale for the chart's numbers (:func:`to_png`), handed to vega-embed as its
        ``formatLocale`` option.

    Returns
    -------
    str
        HTML to place after ``inline_vega_scripts()`` in the same page.
    """
    if not isinstance(div_id, str) or not _DIV_ID.match(div_id):
        raise ValueError(
            f"div_id must be a letter followed by letters, digits, '-' or '_', got {div_id!r}"
        )
    spec = _script_safe_json(_spec(chart))
    options = _script_safe_json({**EMBED_OPTIONS, **({"formatLocale": format_locale} if format_locale else {})})
    return (
        f'<div class="vega-chart" id="{div_id}"></div>\n'
        f'<script type="text/javascript">\n'
        f'vegaEmbed(document.getElementById("{div_id}"), {spec}, {options}).catch(console.error);\n'
        f"</script>"
    )
