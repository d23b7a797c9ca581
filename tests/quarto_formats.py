"""The executed report as Quarto hands it to pandoc, per output format, and its PDF built without Quarto.

Quarto (not installable here) turns an executed notebook into one Markdown document per format:
Markdown cells as written, and for every display output the one MIME type that format prefers
(quarto-cli ``src/core/jupyter/display-data.ts``, ``displayDataMimeType``): Markdown verbatim,
images written to a figures folder and linked, HTML as a raw block. Pandoc then writes HTML or
Typst, and Quarto's bundled typst compiles the PDF. These helpers do the same with pypandoc and
PyPI's ``typst`` package (which pins the compiler: ``typst`` 0.15.2 embeds typst 0.15.1, the one
Quarto 1.10 and 1.11 bundle; 0.14.9 embeds typst 0.14.2, Quarto 1.9's).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pypandoc
import yaml

from tests.qmd_notebook import select_content

# Quarto's order for non-HTML formats; HTML puts its HTML types first (display-data.ts).
TYPST_PRIORITY = ("text/markdown", "image/svg+xml", "image/png", "image/jpeg", "text/plain")
HTML_PRIORITY = (
    "application/vnd.jupyter.widget-state+json", "application/vnd.jupyter.widget-view+json",
    "application/javascript", "text/html", *TYPST_PRIORITY,
)  # fmt: skip
# The MIME types that make Quarto add require.js and jQuery from a CDN (widgets.ts).
CDN_TRIGGERS = ("application/javascript", "text/html", "application/vnd.jupyter.widget-view+json")
# PyPI typst 0.14.9 (typst 0.14.2) installed beside the venv's 0.15.2 by scripts/setup.sh.
TYPST_014 = Path(__file__).resolve().parent.parent / ".venv" / "typst-0.14"


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def display_mime(output, to: str) -> str | None:
    """The MIME type Quarto shows for one display output when writing format ``to``."""
    priority = HTML_PRIORITY if to == "html" else TYPST_PRIORITY
    data = output.get("data", {})
    if to != "html" and "text/html" in data and re.search(r"<table", _text(data["text/html"]), re.I):
        priority = (*priority[:-1], "text/html", "text/plain")
    return next((mime for mime in priority if mime in data), None)


def report_execute_options() -> dict:
    """The ``execute`` options of the report's ``_quarto.yml`` (``output: asis`` among them)."""
    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "report" / "_quarto.yml").read_text())
    return config.get("execute") or {}


def output_markdown(output, to: str, files_dir: Path, build: Path, name: str, asis: bool) -> str | None:
    """One output as Quarto writes it for format ``to`` (without its enclosing block)."""
    if output.output_type == "stream":
        if output.name != "stdout":
            return None  # warning: false
        return output.text if asis else "```\n" + output.text.rstrip("\n") + "\n```"
    mime = display_mime(output, to)
    value = _text(output["data"][mime]) if mime else ""
    if mime == "text/markdown":
        return value
    if mime in ("image/png", "image/jpeg"):
        image = files_dir / f"{name}.{mime.split('/')[1]}"
        image.write_bytes(base64.b64decode(value))
        return f"![]({image.relative_to(build).as_posix()})"
    if mime == "text/html":
        return "```{=html}\n" + value + "\n```"
    if mime == "text/plain":
        return "```\n" + value + "\n```"
    return None


def cell_markdown(cell, index: int, to: str, files_dir: Path, build: Path, execute: dict) -> str:
    """A code cell's outputs as Quarto writes them (quarto-cli ``src/core/jupyter/jupyter.ts``,
    ``mdFromCodeCell``): each output in a ``.cell-output`` div and all in a ``.cell`` div, which
    pandoc's Typst writer turns into ``#block[...]``; with ``output: asis`` no output div, and no
    cell div unless the cell is labelled and has other than one display output (then the div
    carries the label as its id)."""
    options = cell.metadata.get("options", {})
    asis = options.get("output", execute.get("output")) == "asis"
    label = options.get("label")
    displays = sum(output.output_type in ("display_data", "execute_result") for output in cell.outputs)
    label_cell = bool(label) and displays != 1
    parts, suffix = [], 1
    for number, output in enumerate(cell.outputs):
        markdown = output_markdown(output, to, files_dir, build, f"cell-{index}-output-{number}", asis)
        if markdown is None:
            continue
        if not asis:
            kind = f".cell-output-{output.name}" if output.output_type == "stream" else ".cell-output-display"
            ident = ""
            if label_cell and output.output_type != "stream" and not display_mime(output, to).startswith("image/"):
                ident, suffix = f"#{label}-{suffix} ", suffix + 1
            markdown = f"::: {{{ident}.cell-output {kind}}}\n{markdown}\n:::"
        parts.append(markdown)
    if not parts:
        return ""
    body = "\n\n".join(parts)
    if label_cell or not asis:
        body = f"::: {{{'#' + label + ' ' if label_cell else ''}.cell}}\n{body}\n:::"
    return body


def document_markdown(notebook: nbformat.NotebookNode, to: str, build: Path, execute: dict | None = None) -> str:
    """The Markdown Quarto would give pandoc for format ``to`` ("html" or "typst").

    Images of display outputs are written into ``build/figures/`` (linked relative to ``build``,
    where the document goes, as Quarto links its figures folder); stdout
    streams become code blocks; stderr and ``include: false`` chunks are left out, as
    ``warning: false`` and ``include: false`` do. Cell and output blocks as :func:`cell_markdown`,
    under ``execute`` (default: the report's ``_quarto.yml``'s).
    """
    execute = report_execute_options() if execute is None else execute
    files_dir = build / "figures"
    files_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        elif cell.metadata.get("options", {}).get("include") is not False:
            parts.append(cell_markdown(cell, index, to, files_dir, build, execute))
    return "\n\n".join(part for part in parts if part) + "\n"


def front_matter(project: Path, to: str) -> str:
    """YAML front matter with the document's title and ``_quarto.yml``'s options for format ``to``
    (paper size and margins for Typst), which pandoc's templates read as variables."""
    config = yaml.safe_load((project / "_quarto.yml").read_text())
    options = {key: value for key, value in (config["format"].get(to) or {}).items()
               if key in ("papersize", "margin", "fontsize")}  # fmt: skip
    return "---\n" + yaml.safe_dump({"title": "Artificial Neural Networks", **options}) + "---\n\n"


def markdown_to(markdown: str, to: str, profiles: frozenset[str] = frozenset()) -> str:
    """A standalone HTML (MathML) or Typst document from ``markdown``, by the bundled pandoc, with
    Quarto's conditional content (``.content-visible when-format/when-profile``) resolved first."""
    document = json.loads(pypandoc.convert_text(markdown, "json", format="markdown"))
    selected = json.dumps(select_content(document, profiles, to))
    extra = ["--standalone"] + (["--mathml"] if to == "html" else [])
    return pypandoc.convert_text(selected, to, format="json", extra_args=extra)


def compile_typst(typ: Path, pdf: Path, typst_path: Path | None = None) -> list[str]:
    """Compile ``typ`` into ``pdf`` with the venv's ``typst`` or, given ``typst_path``, the
    package installed there (in a subprocess, as two versions cannot share one process); return
    typst's warnings (Quarto prints them, "layout did not converge within 5 attempts" among them)."""
    if typst_path is None:
        import typst

        _, warnings = typst.compile_with_warnings(str(typ), output=str(pdf), root=str(typ.parent))
        return [str(warning.message) for warning in warnings]
    code = ("import json, sys, typst; _, w = typst.compile_with_warnings(sys.argv[1], output=sys.argv[2], root=sys.argv[3]); "
            "print(json.dumps([str(x.message) for x in w]))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(typst_path)}
    result = subprocess.run([sys.executable, "-c", code, str(typ), str(pdf), str(typ.parent)],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def typst_version(typst_path: Path | None = None) -> str:
    """The version of PyPI's ``typst`` package in the venv or at ``typst_path``."""
    code = "import typst; print(typst.__version__)"
    env = {**os.environ, **({"PYTHONPATH": str(typst_path)} if typst_path else {})}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def pdf_text(pdf: Path, raw: bool = False) -> str:
    """The PDF's text, laid out as on the page (poppler's pdftotext -layout), or with ``raw`` in
    the order it was drawn (-raw: a formula's pieces in sequence, as typst set them)."""
    return subprocess.run(["pdftotext", "-raw" if raw else "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=120).stdout  # fmt: skip


def typst_build_dir(report_dir: Path, build: Path) -> Path:
    """Copy the chart PNGs the chunks wrote (``_chart_images/``) beside the document to build."""
    build.mkdir(parents=True, exist_ok=True)
    images = report_dir / "_chart_images"
    if images.is_dir():
        shutil.copytree(images, build / "_chart_images", dirs_exist_ok=True)
    return build


def pdf_word_boxes(pdf: Path) -> dict[tuple[int, float], list[tuple[float, float, str]]]:
    """The PDF's words by (page, baseline): ``(x_min, x_max, word)`` each (poppler's pdftotext -bbox)."""
    xhtml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True,
                           timeout=120).stdout  # fmt: skip
    lines: dict[tuple[int, float], list[tuple[float, float, str]]] = {}
    for number, page in enumerate(xhtml.split("<page ")[1:], start=1):
        for x0, y0, x1, y1, word in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page
        ):
            lines.setdefault((number, round(float(y1), 1)), []).append((float(x0), float(x1), word))
    return lines


def blank_fractions(pdf: Path, dpi: int = 72, margin_pt: float = 56.7, gap_pt: float = 24) -> list[float]:
    """Per page of ``pdf``: the share of the text area (inside ``margin_pt``) taken by white gaps
    taller than ``gap_pt`` (two lines; paragraph spacing is less), from poppler's ``pdftoppm``."""
    import tempfile

    import numpy as np
    from PIL import Image

    fractions = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), f"{tmp}/page"], check=True, timeout=300)
        for png in sorted(Path(tmp).glob("page-*.png"), key=lambda path: int(path.stem.split("-")[-1])):
            image = Image.open(png).convert("L")
            margin = round(margin_pt * dpi / 72)
            area = image.crop((margin, margin, image.width - margin, image.height - margin))
            inked = (np.asarray(area) <= 245).any(axis=1).tolist()  # a row with any non-white pixel
            gaps, run = 0, 0
            for ink in [*inked, True]:
                if not ink:
                    run += 1
                    continue
                gaps += run if run > gap_pt * dpi / 72 else 0
                run = 0
            fractions.append(gaps / area.height)
    return fractions


def heading_titles(typ: Path, levels: int | None = None) -> list[str]:
    """The titles of the Typst source's headings (lines ``= Title``, ``== Title``, ...), markup removed;
    with ``levels``, only the headings of that level."""
    marks = "=+" if levels is None else "=" * levels
    return [re.sub(r"[\\#`*_]", "", line).strip() for line in re.findall(rf"^{marks} (.+)$", typ.read_text(), re.M)]


def pages_before_a_chapter(typ: Path, pdf: Path) -> set[int]:
    """The pages of ``pdf`` followed by a page that starts a chapter (a level-1 heading ``= Title``
    of ``typ``): where the chapter's waiting figures were placed, the rest of the page may stay blank."""
    titles = heading_titles(typ, levels=1)
    pages = pdf_text(pdf).split("\f")
    starts = {number for number, page in enumerate(pages, start=1)
              if any(line.strip().endswith(title) for line in page.splitlines() for title in titles)}  # fmt: skip
    return {number - 1 for number in starts if number > 1}


def headings_at_page_foot(typ: Path, pdf: Path, lines: int = 2) -> list[tuple[int, str]]:
    """The headings of the Typst source ``typ`` (lines ``= Title``) that ``pdf`` sets among the last
    ``lines`` text lines of a page (the page number not counted): ``(page, title)`` each."""
    titles = heading_titles(typ)
    found = []
    for number, page in enumerate(pdf_text(pdf).split("\f"), start=1):
        text_lines = [line.strip() for line in page.splitlines() if line.strip()][:-1]
        for line in text_lines[-lines:]:
            found += [(number, title) for title in titles if line.endswith(title)]
    return found
