"""scripts/setup.sh: a failed pip install stops it loudly, with pip's output and exit status kept.

The script runs in a temporary copy whose ``.venv/bin/python`` is a stub: ``-m pip install``
exits with ``$STUB_PIP_STATUS`` for the install named by ``$STUB_PIP_FAILS`` (after printing a
pip-like error), so nothing is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON_STUB = """#!/bin/bash
echo "$*" >> "$STUB_LOG"
if [ "$1 $2 $3" = "-m pip install" ]; then
    case "$*" in
        *"$STUB_PIP_FAILS"*)
            echo "ERROR: Could not find a version that satisfies the requirement (stub)" >&2
            exit "${STUB_PIP_STATUS:-1}" ;;
    esac
    case "$*" in *--target*) mkdir -p .venv/typst-0.14/typst ;; esac
fi
exit 0
"""


def run_setup(tmp_path: Path, fails: str, status: int = 1) -> tuple[int, str, list[str]]:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", root / "scripts")
    (root / "pyproject.toml").write_text("")
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(PYTHON_STUB)
    python.chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    result = subprocess.run(["bash", str(root / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "STUB_LOG": str(log), "STUB_PIP_FAILS": fails,
                                 "STUB_PIP_STATUS": str(status)})
    return result.returncode, result.stdout + result.stderr, log.read_text().splitlines()


def test_everything_installed_is_exit_0_and_marks_the_venv(tmp_path):
    status, output, calls = run_setup(tmp_path, fails="no-such-install")
    assert status == 0, output
    installs = [call for call in calls if call.startswith("-m pip install")]
    assert installs == ["-m pip install --quiet --upgrade pip", "-m pip install --quiet -e .[dev]",
                        "-m pip install --quiet --target .venv/typst-0.14 typst==0.14.9"]
    assert (tmp_path / "repo" / ".venv" / ".anncore-installed").exists()


@pytest.mark.parametrize("fails", ["-e .[dev]", "typst==0.14.9"])
def test_a_failed_install_stops_with_pips_reason_and_status(tmp_path, fails):
    status, output, calls = run_setup(tmp_path, fails=fails, status=1)
    assert status == 1
    assert "ERROR: Could not find a version" in output  # pip's own reason is shown
    assert re.search(rf"setup: 'pip install [^']*{re.escape(fails)}' failed \(exit 1", output), output
    if fails == "-e .[dev]":
        assert not (tmp_path / "repo" / ".venv" / ".anncore-installed").exists()  # retried next time
        assert not [call for call in calls if "typst" in call]  # stopped there
