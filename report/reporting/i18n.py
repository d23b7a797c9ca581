"""The report's languages: which edition is rendering, and its message catalogue (gettext).

Every sentence, caption, table header and callout the helpers write goes through :func:`_`
or :func:`ngettext` (Russian has three plural forms: 1 эпоха, 2 эпохи, 5 эпох). A language
is a file: ``report/reporting/locale/<language>/LC_MESSAGES/reporting.po`` (plus the charts'
``experiments/charts/locale/<language>/LC_MESSAGES/charts.po``); English, the source
language, needs none. The ``.po`` files are compiled in memory when first used
(:func:`experiments.charts.i18n.catalogue`).

Which edition: ``quarto render report --profile ru`` renders the Russian one. Quarto puts the
active profiles in ``QUARTO_PROFILE`` (comma-separated), which the Jupyter kernel inherits;
the first profile that names a language wins. Without one, ``ANNCORE_REPORT_LANG`` decides
(tests and plain notebook runs), else English. The language is read on every call, so a
kernel never caches the wrong edition.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from experiments.charts import i18n as catalogues

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "reporting"
PROFILE_VARIABLE = "QUARTO_PROFILE"
LANGUAGE_VARIABLE = "ANNCORE_REPORT_LANG"
N_ = catalogues.N_
# Thousands separator per language (Russian groups digits with a no-break space: 8 226).
GROUPING = {"en": ",", "ru": "\u00a0"}


def languages() -> tuple[str, ...]:
    """Every language the report can be rendered in: English and each ``reporting.po``."""
    return catalogues.languages(LOCALE_DIR, DOMAIN)


def language() -> str:
    """The language of the edition being rendered (see the module docstring).

    Raises
    ------
    ValueError
        ``ANNCORE_REPORT_LANG`` names a language without a catalogue.
    """
    available = languages()
    for profile in re.split(r"[ ,]+", os.environ.get(PROFILE_VARIABLE, "").strip()):
        if profile in available:
            return profile
    requested = os.environ.get(LANGUAGE_VARIABLE, "").strip()
    if not requested:
        return catalogues.SOURCE_LANGUAGE
    if requested not in available:
        raise ValueError(f"{LANGUAGE_VARIABLE}={requested!r} has no catalogue; available: {', '.join(available)}")
    return requested


def _(message: str) -> str:
    """``message`` (an English msgid of reporting.po) in the edition's language."""
    return catalogues.catalogue(language(), LOCALE_DIR, DOMAIN).gettext(message)


def ngettext(singular: str, plural: str, n: int | float) -> str:
    """The plural form for ``n`` in the edition's language (``{n}`` still to be formatted)."""
    count = int(n) if float(n).is_integer() else 2  # a fractional count reads as a plural
    return catalogues.catalogue(language(), LOCALE_DIR, DOMAIN).ngettext(singular, plural, count)


def grouped(number: str) -> str:
    """A number formatted with ``,`` thousands separators (``f"{x:,.2f}"``), in the edition's grouping."""
    return number.replace(",", GROUPING.get(language(), ","))


def integer(value: int | float) -> str:
    """A whole number with the edition's thousands separator: ``8,226`` or ``8 226``."""
    return grouped(f"{int(value):,}")


def translated(text: str) -> str:
    """``_(text)`` for a text that comes with the data (a logged description); empty stays empty.

    (gettext's ``""`` is the catalogue's header, never a translation.)
    """
    return _(text) if text else text


def chart_language() -> str:
    """The language to hand the chart builders (they have their own catalogue)."""
    lang = language()
    return lang if lang in catalogues.languages() else catalogues.SOURCE_LANGUAGE
