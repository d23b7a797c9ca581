"""reporting.typography: minus and times signs in every edition, the decimal comma in Russian."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import Markdown

from reporting.typography import localized, use_edition_typography

SAMPLE = (
    "| -2 | -0.864665 | 0.6 * (-0.0282) = -0.01692 | 784-128-10 | 2026-12-04 | [-5, 5] |\n\n"
    "Trained in 10.5 s (python 3.11.7, TO-DO 4.1), `--lr 0.001 --seeds -1`: $a = 0.5 - 0.25$.\n\n"
    "| relu | 1.4e-10 | 1e-06 | e2.5 |\n\n"
    "```{=typst}\n#image(width: 12.5pt)\n```\n"
)


def test_every_edition_gets_minus_and_times_signs_outside_code_and_math() -> None:
    text = localized(SAMPLE, "en")
    assert "| −2 | −0.864665 | 0.6 × (−0.0282) = −0.01692 |" in text
    assert "784-128-10 | 2026-12-04 | [−5, 5]" in text  # an architecture and a date keep their hyphens
    assert "`--lr 0.001 --seeds -1`" in text and "$a = 0.5 - 0.25$" in text and "width: 12.5pt" in text
    assert "10.5 s" in text and "3.11.7" in text



@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_hyphen_between_numbers_is_a_minus_but_a_list_dash_stays(lang: str) -> None:
    """The discrepancy notes write ``4.055 - 0.247`` and ``0.672 * (1 - 0.672)``: beside a × they
    showed an ASCII hyphen ("0.672 × (1 - 0.672)"); a list item's dash is left alone."""
    text = localized("- 4.055 - 0.247 subtracts\n- 0.672 * (1 - 0.672) = 0.2204\n- x - y, 3 -- 4\n", lang)
    mark = "," if lang == "ru" else "."
    assert text.splitlines() == [
        f"- 4{mark}055 − 0{mark}247 subtracts", f"- 0{mark}672 × (1 − 0{mark}672) = 0{mark}2204", "- x - y, 3 -- 4"
    ]
    assert localized("`(1 - 2)` and $(1 - 2)$", lang) == "`(1 - 2)` and $(1 - 2)$"

def test_russian_writes_decimal_commas_and_joins_units() -> None:
    text = localized(SAMPLE.replace("10.5 s", "10.5 с"), "ru")
    assert "| −2 | −0,864665 | 0,6 × (−0,0282) = −0,01692 |" in text
    assert "10,5\u00a0с" in text and "python 3.11.7" in text and "TO-DO 4.1" in text
    assert "$a = 0{,}5 - 0{,}25$" in text  # in TeX a bare comma is punctuation, spaced
    assert "| relu | 1,4e-10 | 1e-06 | e2.5 |" in text  # scientific notation too
    assert "`--lr 0.001 --seeds -1`" in text and "width: 12.5pt" in text


@pytest.mark.parametrize(("lang", "expected"), [("en", "−0.5"), ("ru", "−0,5")])
def test_markdown_outputs_are_shown_with_the_editions_typography(monkeypatch, lang: str, expected: str) -> None:
    monkeypatch.setenv("QUARTO_PROFILE", lang if lang != "en" else "")
    monkeypatch.setenv("ANNCORE_REPORT_LANG", "")
    shell = InteractiveShell.instance()
    try:
        use_edition_typography(shell)
        data, _ = shell.display_formatter.format(Markdown("x = -0.5"))
        assert data["text/markdown"] == f"x = {expected}"
    finally:
        shell.display_formatter.formatters["text/markdown"].pop(Markdown, None)
        InteractiveShell.clear_instance()


@pytest.mark.parametrize(("lang", "expected"), [("en", "−0.5"), ("ru", "−0,5")])
def test_a_figures_caption_gets_the_editions_typography(tmp_path, monkeypatch, lang: str, expected: str) -> None:
    """A chart's source line was a Markdown output of its own; inside the figure it still is formatted as one."""
    import io

    from PIL import Image

    from reporting.display import png_image

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUARTO_PROFILE", lang if lang != "en" else "")
    monkeypatch.setenv("ANNCORE_REPORT_LANG", "")
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, format="PNG")
    shell = InteractiveShell.instance()
    try:
        use_edition_typography(shell)
        markdown = png_image(buffer.getvalue(), "x", "x", caption="*Mean change -0.5.*")._repr_mimebundle_()["text/markdown"]
        assert f"*Mean change {expected}.*\n" in markdown
    finally:
        shell.display_formatter.formatters["text/markdown"].pop(Markdown, None)
        InteractiveShell.clear_instance()
