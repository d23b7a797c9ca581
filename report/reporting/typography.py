"""Number typography in the report's Markdown: ``-0.54 * 2`` is ``−0.54 × 2``, and in Russian
``0.54 s`` is ``0,54 с``.

The helpers (and the texts logged with the runs) format numbers with Python: an ASCII hyphen
for minus and ``*`` for times, beside the formulas' − and ×; every edition gets the signs.
Python writes a decimal point; Russian typography writes a comma (``0,54``; in formulas
``0{,}54``, since a bare comma in TeX mathematics is punctuation followed by a space), and
joins a number to its unit with a no-break space (``10,5 с`` never parts at a line end).
Rather than format every number twice, each Markdown output passes through :func:`localized`,
registered with IPython by :func:`use_edition_typography` (the report's setup chunk). Code
(inline and blocks), raw HTML/Typst blocks, version numbers (``3.11.7``), architectures
(``784-128-10``), dates and numbered tasks (``TO-DO 4.1``) are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

from reporting.i18n import language

# Languages that write a decimal comma.
DECIMAL_COMMA = {"ru"}
# A fenced block (code or raw ``{=html}``), an inline code span, display or inline math.
_PROTECTED = re.compile(r"(^(`{3,}|~{3,})[^\n]*\n.*?^\2[ \t]*$|`+[^`]*?`+)", re.S | re.M)
_MATH = re.compile(r"(\$\$.*?\$\$|(?<![\\$])\$[^$\n]+?\$)", re.S)
# A decimal number: digits, a point, digits, not part of a dotted version (3.11.7), a word, or a task
# number; one in scientific notation (1.4e-10) counts.
_DECIMAL = re.compile(r"(?<![\w.])(?<!TO-DO )([-−]?\d+)\.(\d+)(?=e[-+−]?\d|(?![\w]|\.\d))")
# A hyphen used as a minus sign (before a digit, not inside a word, range or date), and ``*`` as times.
_MINUS = re.compile(r"(?<![\w.\-−])-(?=\d)")
_TIMES = re.compile(r"(?<=[\w)]) \* (?=[\w(−-])")
# A hyphen between spaces after a number or a closing bracket, before a number or bracket: a binary
# minus (``4.055 - 0.247``, ``(1 - 0.672)``); a list's ``- `` never follows a digit on its line.
_BINARY_MINUS = re.compile(r"(?<=[\d)]) - (?=[\d(−])")
# A number, a space and a Russian unit abbreviation (seconds, milliseconds, mebibytes).
_UNIT = re.compile(r"(\d) (с|мс|МиБ)(?![А-Яа-яЁё])")


def localized(markdown: str, lang: str | None = None) -> str:
    """``markdown`` with minus and times signs, and ``lang``'s decimal mark (default: the edition's).

    Parameters
    ----------
    markdown : str
        Pandoc Markdown, possibly with math, code and raw blocks (left as they are, but for the
        decimal mark in math).
    lang : str, optional
        A language code; one in :data:`DECIMAL_COMMA` also gets decimal commas and no-break
        spaces before units.
    """
    comma = (lang or language()) in DECIMAL_COMMA
    pieces = _PROTECTED.split(markdown)
    out = []
    # re.split with two groups: text, protected, inner fence, text, ...
    for index in range(0, len(pieces), 3):
        out.append(_prose(pieces[index], comma))
        if index + 1 < len(pieces):
            out.append(pieces[index + 1])
    return "".join(out)


def _prose(text: str, comma: bool) -> str:
    parts = _MATH.split(text)
    for index, part in enumerate(parts):
        if index % 2:  # mathematics: TeX has its own minus and \times
            parts[index] = _DECIMAL.sub(r"\1{,}\2", part) if comma else part
            continue
        part = _TIMES.sub(" × ", _BINARY_MINUS.sub(" − ", _MINUS.sub("−", part)))
        parts[index] = _UNIT.sub("\\1\u00a0\\2", _DECIMAL.sub(r"\1,\2", part)) if comma else part
    return "".join(parts)


def use_edition_typography(shell: Any = None) -> None:
    """Show every Markdown display object of this kernel with the edition's number typography.

    Registers :func:`localized` as IPython's ``text/markdown`` formatter for
    :class:`IPython.display.Markdown` (outside IPython, nothing happens).
    """
    from IPython import get_ipython
    from IPython.display import Markdown

    shell = shell or get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/markdown"]
    formatter.for_type(Markdown, lambda obj: localized(obj.data))
