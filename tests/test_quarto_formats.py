"""The test harness's stand-in for Quarto's notebook-to-Markdown step (tests/quarto_formats.py)
writes cells as quarto-cli's ``mdFromCodeCell`` does: that is what decides whether a figure can
float in the PDF (pandoc's Typst writer turns every div into ``#block[...]``)."""

from __future__ import annotations

import nbformat
import pypandoc

from tests.quarto_formats import document_markdown


def cell(label: str, *markdowns: str) -> nbformat.NotebookNode:
    outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": md, "text/plain": "x"}) for md in markdowns]
    code = nbformat.v4.new_code_cell(f"#| label: {label}\n1", outputs=outputs, execution_count=1)
    code.metadata["options"] = {"label": label}
    return code


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def test_without_asis_every_output_and_cell_is_a_typst_block(tmp_path) -> None:
    markdown = document_markdown(notebook(cell("two", "First.", "Second.")), "typst", tmp_path, execute={})
    assert markdown.startswith("::: {#two .cell}\n::: {#two-1 .cell-output .cell-output-display}\nFirst.\n:::")
    assert "::: {#two-2 .cell-output .cell-output-display}\nSecond.\n:::\n:::" in markdown
    assert pypandoc.convert_text(markdown, "typst", format="markdown").count("#block[") == 3


def test_asis_writes_one_output_bare_and_a_labelled_cell_of_several_in_one_block(tmp_path) -> None:
    one = document_markdown(notebook(cell("one", "Only.")), "typst", tmp_path, execute={"output": "asis"})
    several = document_markdown(notebook(cell("two", "First.", "Second.")), "typst", tmp_path, execute={"output": "asis"})
    assert one == "Only.\n" and "#block[" not in pypandoc.convert_text(one, "typst", format="markdown")
    assert several == "::: {#two .cell}\nFirst.\n\nSecond.\n:::\n"
