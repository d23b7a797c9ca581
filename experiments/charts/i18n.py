"""Message catalogues for chart titles, axis labels and legends (gettext, domain ``charts``).

A language is a catalogue file: ``experiments/charts/locale/<language>/LC_MESSAGES/charts.po``.
English is the source language (the msgids), so it needs no file. The ``.po`` files are the
only thing committed: :func:`catalogue` compiles one in memory with Babel the first time it is
asked for (no binary ``.mo`` to keep in step with its source).

The chart builders take a ``language`` argument and translate their texts with
:func:`translator`; nothing here knows about the report, which passes its edition's language.
The same loader serves the report's own catalogue (``reporting.i18n``).
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path
from typing import Callable

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SOURCE_LANGUAGE = "en"
DOMAIN = "charts"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``message`` for the catalogue without translating it (translated where it is used)."""
    return message


def languages(locale_dir: Path = LOCALE_DIR, domain: str = DOMAIN) -> tuple[str, ...]:
    """The source language and every language with a ``<locale_dir>/<lang>/LC_MESSAGES/<domain>.po``."""
    found = sorted(path.parent.parent.name for path in Path(locale_dir).glob(f"*/LC_MESSAGES/{domain}.po"))
    return (SOURCE_LANGUAGE, *[lang for lang in found if lang != SOURCE_LANGUAGE])


def check_language(language: str, locale_dir: Path = LOCALE_DIR, domain: str = DOMAIN) -> str:
    """Return ``language`` if it has a catalogue (or is the source language), else raise ValueError."""
    available = languages(locale_dir, domain)
    if language not in available:
        raise ValueError(f"no {domain!r} catalogue for language {language!r}; available: {', '.join(available)}")
    return language


@functools.lru_cache(maxsize=None)
def catalogue(language: str, locale_dir: Path = LOCALE_DIR, domain: str = DOMAIN) -> gettext.NullTranslations:
    """The translations of ``domain`` into ``language``, compiled from its ``.po`` file.

    The source language gets ``NullTranslations`` (msgids returned as they are, plural forms
    by English rules). Untranslated or fuzzy entries fall back to the msgid.
    """
    check_language(language, locale_dir, domain)
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = Path(locale_dir) / language / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as po:
        messages = read_po(po, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, messages)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def translator(language: str = SOURCE_LANGUAGE) -> Callable[[str], str]:
    """``gettext`` of the charts catalogue in ``language``: ``translator("ru")("loss")`` -> ``"потери"``."""
    return catalogue(language).gettext


# Languages that write a decimal comma (0,01); the charts' axes get it from the locale the caller
# hands to the renderer, labels made here from numbers through :func:`number`.
DECIMAL_COMMA = frozenset({"ru"})


def number(value: float, language: str = SOURCE_LANGUAGE, spec: str = "g") -> str:
    """``value`` formatted with ``spec``, with ``language``'s decimal mark: ``number(0.01, "ru")`` -> ``"0,01"``."""
    text = format(value, spec)
    return text.replace(".", ",") if language in DECIMAL_COMMA else text
