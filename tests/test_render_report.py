"""scripts/render_report.sh (called by run_suite.sh) finds Quarto on PATH or in .venv/bin, where
``pip install -e ".[report]"`` (PyPI's quarto-cli) puts it, and says how to get it otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAKE_QUARTO = '#!/usr/bin/env bash\necho "quarto $* with QUARTO_PYTHON=$QUARTO_PYTHON"\n'


def checkout(tmp_path: Path) -> Path:
    """A folder laid out like the repository, holding only the script."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "render_report.sh", tmp_path / "scripts")
    return tmp_path


def render(root: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "quarto").exists())
    return subprocess.run(["bash", str(root / "scripts" / "render_report.sh"), *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PATH": path})  # fmt: skip


def test_renders_with_the_venvs_quarto_when_none_is_on_path(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    quarto = root / ".venv" / "bin" / "quarto"
    quarto.parent.mkdir(parents=True)
    quarto.write_text(FAKE_QUARTO)
    quarto.chmod(0o755)
    result = render(root, "--profile", "ru")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"quarto render report --profile ru with QUARTO_PYTHON={root}/.venv/bin/python"


def test_without_quarto_it_says_how_to_install_it_and_exits_3(tmp_path: Path) -> None:
    result = render(checkout(tmp_path))
    assert result.returncode == 3
    assert '.venv/bin/pip install -e ".[report]"' in result.stdout and "quarto.org" in result.stdout


def test_quarto_cli_is_an_optional_extra_not_part_of_the_default_setup() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any(req.startswith("quarto-cli") for req in extras["report"])
    assert not any("quarto" in req for req in project["dependencies"] + extras["dev"])
    assert '-e ".[dev]"' in (REPO / "scripts" / "setup.sh").read_text()
