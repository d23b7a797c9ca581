"""Read the report's ``.qmd`` files the way Quarto does, and run their chunks in a real kernel.

Quarto (not installable here) splices ``{{< include file >}}`` shortcodes in before anything
else, turns every ```` ```{python} ```` chunk into a notebook code cell (its ``#|`` lines are
chunk options) and everything between into Markdown cells, then executes the notebook with
the document's folder as working directory. These helpers do the same with nbformat and
nbclient, so tests execute exactly the code a render would.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

INCLUDE = re.compile(r"^\{\{<\s*include\s+(\S+)\s*>\}\}\s*$")
CHUNK_START = re.compile(r"^(`{3,})\s*\{python[^}]*\}\s*$")
OPTION = re.compile(r"^#\|\s?(.*)$")


def expand_includes(path: Path, seen: tuple[Path, ...] = ()) -> tuple[str, list[Path]]:
    """Return ``path``'s text with include shortcodes replaced by the files, and every file read."""
    path = Path(path).resolve()
    if path in seen:
        raise ValueError(f"include cycle through {path}")
    lines, files = [], [path]
    for line in path.read_text().splitlines():
        match = INCLUDE.match(line.strip())
        if match:
            text, included = expand_includes(path.parent / match.group(1), (*seen, path))
            lines.append(text)
            files += included
        else:
            lines.append(line)
    return "\n".join(lines), files


def split_front_matter(text: str) -> tuple[dict, str]:
    """Return the YAML front matter (empty if none) and the rest of the document."""
    if text.startswith("---\n"):
        end = text.index("\n---", 4)
        return yaml.safe_load(text[4:end]) or {}, text[end + 4 :]
    return {}, text


def chunk_options(source: str) -> dict:
    """The ``#|`` options at the top of a chunk, parsed as YAML."""
    option_lines = []
    for line in source.splitlines():
        match = OPTION.match(line)
        if not match:
            break
        option_lines.append(match.group(1))
    return yaml.safe_load("\n".join(option_lines)) or {}


def split_cells(body: str) -> list[tuple[str, str]]:
    """Split a document body into ``("markdown", text)`` and ``("code", source)`` cells, in order."""
    cells, buffer, fence = [], [], None
    for line in body.splitlines():
        if fence is None:
            match = CHUNK_START.match(line.strip())
            if match:
                if "".join(buffer).strip():
                    cells.append(("markdown", "\n".join(buffer).strip("\n")))
                buffer, fence = [], match.group(1)
            else:
                buffer.append(line)
        elif line.strip() == fence:
            cells.append(("code", "\n".join(buffer).strip("\n")))
            buffer, fence = [], None
        else:
            buffer.append(line)
    if fence is not None:
        raise ValueError("a python chunk is not closed")
    if "".join(buffer).strip():
        cells.append(("markdown", "\n".join(buffer).strip("\n")))
    return cells


def qmd_notebook(path: Path) -> nbformat.NotebookNode:
    """Build the notebook Quarto would execute for the document at ``path``."""
    text, files = expand_includes(path)
    front_matter, body = split_front_matter(text)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["qmd"] = {"front_matter": front_matter, "files": [str(f) for f in files]}
    for kind, source in split_cells(body):
        if kind == "code":
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["options"] = chunk_options(source)
        else:
            cell = nbformat.v4.new_markdown_cell(source)
        notebook.cells.append(cell)
    return notebook


def execute_notebook(
    notebook: nbformat.NotebookNode, cwd: Path, env: dict[str, str], timeout: int = 300
) -> nbformat.NotebookNode:
    """Execute ``notebook`` in a fresh ``python3`` kernel started in ``cwd`` with environment ``env``.

    Raises ``nbclient.exceptions.CellExecutionError`` at the first chunk that fails.
    """
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=timeout,
        allow_errors=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env={**os.environ, **env})
    return notebook


def outputs_of(cell: nbformat.NotebookNode, mime: str) -> list[str]:
    """Every ``mime`` representation among a code cell's display outputs."""
    found = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if mime in data:
            value = data[mime]
            found.append("".join(value) if isinstance(value, list) else value)
    return found


def inline_pngs(cell: nbformat.NotebookNode) -> list[str]:
    """The base64 PNGs a code cell's Markdown shows inline (``<img src="data:image/png;base64,...">``)."""
    return [m for md in outputs_of(cell, "text/markdown") for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', md)]


def cells_by_label(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The notebook's code cells keyed by their ``label`` option."""
    return {
        cell.metadata["options"]["label"]: cell
        for cell in notebook.cells
        if cell.cell_type == "code" and "label" in cell.metadata.get("options", {})
    }


def _visible(attributes: dict[str, str], classes: list[str], profiles: set[str], to: str) -> bool:
    """Whether Quarto keeps a ``.content-visible`` / ``.content-hidden`` div for ``profiles`` and format ``to``."""
    conditions = []
    for key, value in attributes.items():
        kind, _, what = key.partition("-")  # when-profile, unless-format, ...
        if kind in {"when", "unless"} and what in {"profile", "format"}:
            active = value in profiles if what == "profile" else value == to or (value == "pdf" and to == "typst")
            conditions.append(active if kind == "when" else not active)
    met = all(conditions)
    return met if "content-visible" in classes else not met


def _select_blocks(blocks: list, profiles: set[str], to: str) -> list:
    kept = []
    for block in blocks:
        if block.get("t") == "Div":
            (ident, classes, pairs), inner = block["c"]
            if {"content-visible", "content-hidden"} & set(classes):
                if _visible(dict(pairs), classes, profiles, to):
                    kept += _select_blocks(inner, profiles, to)
                continue
            block = {"t": "Div", "c": [[ident, classes, pairs], _select_blocks(inner, profiles, to)]}
        kept.append(block)
    return kept


def select_content(document: dict, profiles: set[str] | frozenset[str], to: str) -> dict:
    """The pandoc AST ``document`` with Quarto's conditional content resolved, as a render would.

    ``::: {.content-visible when-profile="ru"}`` blocks stay (unwrapped) only when ``ru`` is among
    ``profiles``, ``unless-profile`` ones only when it is not, ``when-format``/``unless-format``
    likewise for the output format ``to`` (``html``, ``typst``); ``.content-hidden`` is the
    inverse. Quarto does this in a Lua filter after execution, so chunks inside still run.
    """
    return {**document, "blocks": _select_blocks(document["blocks"], set(profiles), to)}
