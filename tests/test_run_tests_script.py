"""scripts/run_tests.sh: which Debian packages it installs, when it may, and the one line it prints when it may not.

The script runs in a copy of scripts/ whose setup.sh, ``.venv/bin/python -m pytest``, ``id``,
``sudo`` and ``apt-get`` are stubs (first on PATH) recording their calls; ``-m tests.external_tools`` runs the real
module, with tools made to look missing by ``$ANNCORE_TESTS_HIDE_TOOLS``, so the script and the
tests' skips are checked to agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.external_tools import find

REPO = Path(__file__).resolve().parent.parent
RECORDER = """#!/bin/bash
printf '%s' "{name}" >> "$STUB_LOG"
printf '|%s' "$@" >> "$STUB_LOG"
printf '|DEBIAN_FRONTEND=%s\\n' "${{DEBIAN_FRONTEND:-}}" >> "$STUB_LOG"
{body}
"""
PYTHON_BODY = f"""if [ "$1 $2" = "-m tests.external_tools" ]; then
    PYTHONPATH={REPO} exec {sys.executable} "$@"
fi"""


def stub(path: Path, name: str, body: str = "exit 0") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(name=name, body=body))
    path.chmod(0o755)


@pytest.fixture
def tests_script(tmp_path):
    """A function running the copied run_tests.sh as user ``uid``; returns (status, output, calls)."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "run_tests.sh", root / "scripts")
    stub(root / "scripts" / "setup.sh", "setup")
    stub(root / ".venv" / "bin" / "python", "python", PYTHON_BODY)
    tools = tmp_path / "tools"
    stub(tools / "apt-get", "apt-get", 'exit "${STUB_APT_STATUS:-0}"')
    log = tmp_path / "calls.log"

    def run(*args: str, uid: int, sudo: bool = False, hide: str = "", **env: str):
        stub(tools / "id", "id", f"echo {uid}")
        # passwordless: `sudo -n COMMAND` runs COMMAND; else it wants a password, which -n refuses
        stub(tools / "sudo", "sudo", '[ "$1" = -n ] && shift; exec "$@"' if sudo else "exit 1")
        log.write_text("")
        env = {"PATH": f"{tools}:{os.environ['PATH']}", "HOME": str(tmp_path), "STUB_LOG": str(log),
               "ANNCORE_TESTS_HIDE_TOOLS": hide, **env}
        result = subprocess.run(["bash", str(root / "scripts" / "run_tests.sh"), *args], capture_output=True,
                                text=True, timeout=120, env=env)
        calls = [line.split("|") for line in log.read_text().splitlines()]
        return result.returncode, result.stdout + result.stderr, [c for c in calls if c[0] not in ("id", "sudo")]

    return run


# The stubs stand in for apt-get; the real module decides what is missing, so these need the tools.
pytestmark = pytest.mark.skipif(
    any(find(name, honour_hidden=False) is None for name in ("chromium", "pdftotext", "pdffonts", "pdftoppm", "postgresql")),
    reason="checks the hidden-tool cases on a machine that has every tool")


def test_with_every_tool_present_nothing_is_installed_and_pytest_gets_the_arguments(tests_script):
    status, output, calls = tests_script("-x", "tests/test_cli.py", uid=1000)
    assert status == 0, output
    assert [call[0] for call in calls] == ["setup", "python", "python"]  # setup, the tools' check, pytest
    # two pytest-xdist workers, grouped by tests/conftest.py; the caller's arguments come last and win
    assert calls[-1][1:-1] == ["-m", "pytest", "-n", "2", "--dist", "loadgroup", "-x", "tests/test_cli.py"]
    assert "skipped" not in output


def test_anncore_test_workers_sets_the_number_of_workers(tests_script):
    status, output, calls = tests_script("tests/test_cli.py", uid=1000, ANNCORE_TEST_WORKERS="0")
    assert status == 0, output
    assert calls[-1][1:-1] == ["-m", "pytest", "-n", "0", "--dist", "loadgroup", "tests/test_cli.py"]


@pytest.mark.parametrize("sudo", [False, True])
def test_as_root_or_with_sudo_the_missing_packages_are_installed_after_one_update(tests_script, sudo):
    status, output, calls = tests_script(uid=0 if not sudo else 1000, sudo=sudo, hide="chromium,pdftotext")
    assert status == 0, output
    apt = [call for call in calls if call[0] == "apt-get"]
    assert [call[1:] for call in apt] == [
        ["update", "-qq", "DEBIAN_FRONTEND=noninteractive"],
        ["install", "-y", "-qq", "chromium", "poppler-utils", "DEBIAN_FRONTEND=noninteractive"],
    ]
    assert calls[-1][1:3] == ["-m", "pytest"]


def test_without_the_right_to_install_one_line_names_the_skipped_tests_and_the_command(tests_script):
    status, output, calls = tests_script(uid=1000, hide="postgresql,pdftotext,pdffonts,pdftoppm")
    assert status == 0, output
    assert not [call for call in calls if call[0] == "apt-get"]
    (line,) = output.splitlines()
    assert line == ("Tests needing pdftotext, pdffonts, pdftoppm, postgresql will be skipped; to run them: "
                    "sudo apt-get update && sudo apt-get install -y poppler-utils postgresql")
    assert calls[-1][1:3] == ["-m", "pytest"]


def test_a_failed_apt_get_is_said_and_the_tests_still_run_with_the_skip_line(tests_script):
    status, output, calls = tests_script(uid=0, hide="chromium", STUB_APT_STATUS="100")
    assert status == 0, output
    assert "apt-get could not install chromium" in output and "Tests needing chromium will be skipped" in output
    assert calls[-1][1:3] == ["-m", "pytest"]
