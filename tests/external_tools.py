"""The programs from outside Python that some tests need, found in one place, with the install hint.

A test that needs one is marked ``@requires("pdftotext")`` (or calls ``require("chromium")`` in a
fixture, which returns the program's path): where the program is missing the test is skipped with
the command that installs it, never failed or errored. ``scripts/run_tests.sh`` asks this module
(``python -m tests.external_tools missing``) which Debian packages to install before pytest starts,
so the script and the skips agree.

``$ANNCORE_TESTS_HIDE_TOOLS`` (names separated by commas or spaces, e.g. ``chromium,pdftotext``)
makes tools look missing, to try the skips and the script's message on a machine that has them.

Run ``python -m tests.external_tools`` to see what is found.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

import pytest

HIDE_VARIABLE = "ANNCORE_TESTS_HIDE_TOOLS"


@dataclass(frozen=True)
class Tool:
    """A program some tests need: how to find it, and the install that provides it.

    ``package`` is the Debian package (installed by ``scripts/run_tests.sh``); tools without one
    come from ``install`` (a command run from the repository's root).
    """

    name: str
    used_for: str
    package: str | None = None
    install: str | None = None

    def hint(self) -> str:
        """The command that installs this tool."""
        if self.package:
            return f"sudo apt-get install -y {self.package} (or run bash scripts/run_tests.sh as root)"
        return str(self.install)


TOOLS = {
    tool.name: tool
    for tool in (
        Tool("chromium", "the report's charts and the MLflow UI drawn in a real browser", package="chromium"),
        Tool("pdftotext", "the text of the PDFs built with typst", package="poppler-utils"),
        Tool("pdffonts", "the fonts embedded in the PDFs", package="poppler-utils"),
        Tool("pdftoppm", "the PDF's pages as images", package="poppler-utils"),
        Tool("postgresql", "the class server's own PostgreSQL cluster (initdb, pg_ctl)", package="postgresql"),
        Tool("typst-0.14", "the report's PDF compiled with typst 0.14 (Quarto 1.9's)",
             install="bash scripts/setup.sh (pip install --target .venv/typst-0.14 typst==0.14.9)"),
    )
}


def _hidden() -> set[str]:
    return set(os.environ.get(HIDE_VARIABLE, "").replace(",", " ").split())


def _postgresql() -> str | None:
    from experiments.server.postgres import find_bin_dir

    try:
        return str(find_bin_dir())
    except Exception:  # UserInputError: not installed
        return None


def find(name: str, *, honour_hidden: bool = True) -> str | None:
    """Where tool ``name`` (a key of ``TOOLS``) is: a program's path or a folder; None when missing
    (or hidden by ``$ANNCORE_TESTS_HIDE_TOOLS``, unless ``honour_hidden`` is false)."""
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; known: {', '.join(TOOLS)}")
    if honour_hidden and name in _hidden():
        return None
    if name == "chromium":
        return shutil.which("chromium") or shutil.which("chromium-browser")
    if name == "postgresql":
        return _postgresql()
    if name == "typst-0.14":
        from tests.quarto_formats import TYPST_014

        return str(TYPST_014) if (TYPST_014 / "typst").is_dir() else None
    return shutil.which(name)


def skip_reason(name: str) -> str:
    """Why a test needing ``name`` is skipped, with the command that installs it."""
    tool = TOOLS[name]
    return f"needs {name} ({tool.used_for}); install it with: {tool.hint()}"


def requires(*names: str) -> pytest.MarkDecorator:
    """A mark skipping the test unless every tool in ``names`` is found."""
    missing = [name for name in names if find(name) is None]
    return pytest.mark.skipif(bool(missing), reason="; ".join(skip_reason(name) for name in missing))


def require(name: str) -> str:
    """Tool ``name``'s path (for fixtures and test bodies); skips the calling test when it is missing."""
    found = find(name)
    if found is None:
        pytest.skip(skip_reason(name))
    return found


def missing_packages() -> dict[str, list[str]]:
    """The Debian packages whose tools are missing: package -> the tools it would provide."""
    missing: dict[str, list[str]] = {}
    for tool in TOOLS.values():
        if tool.package and find(tool.name) is None:
            missing.setdefault(tool.package, []).append(tool.name)
    return missing


def main(argv: list[str]) -> int:
    """``missing``: the missing Debian packages, one line, space-separated (empty when none);
    ``skip-note``: one line saying which tests will be skipped and how to install what they need;
    no argument: every tool and where it was found."""
    command = argv[0] if argv else "list"
    if command == "missing":
        print(" ".join(missing_packages()))
    elif command == "skip-note":
        missing = missing_packages()
        if missing:
            tools = ", ".join(tool for names in missing.values() for tool in names)
            print(f"Tests needing {tools} will be skipped; to run them: "
                  f"sudo apt-get update && sudo apt-get install -y {' '.join(missing)}")
    else:
        for name in TOOLS:
            print(f"{name:12} {find(name) or 'missing: ' + TOOLS[name].hint()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
