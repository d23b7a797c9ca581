"""scripts/run_suite.sh: what reaches `run all` and the benchmark, when the benchmark is skipped,
the exit status, and the render step with and without Quarto.

The script runs in a copy of the repository's scripts/ whose .venv/bin/python, setup.sh and
quarto are stubs that record how they were called, so nothing is installed, trained or rendered.
The stub python's ``-m pip install`` exits ``$STUB_PIP_STATUS`` (with pip's offline message when
it fails) and, when it succeeds, puts the quarto stub in .venv/bin as quarto-cli's wheel does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECORDER = """#!/bin/bash
printf '%s' "{name}" >> "$STUB_LOG"
printf '|%s' "$@" >> "$STUB_LOG"
printf '|QUARTO_PYTHON=%s\\n' "${{QUARTO_PYTHON:-}}" >> "$STUB_LOG"
{body}
"""
PYTHON_BODY = """case "$1 $2" in
    "-m experiments") exit "${STUB_RUN_STATUS:-0}" ;;
    "-m experiments.benchmark") exit "${STUB_BENCHMARK_STATUS:-0}" ;;
    "-m pip")
        if [ "${STUB_PIP_STATUS:-0}" != 0 ]; then
            echo "      Error downloading Quarto: <urlopen error [Errno -2] Name or service not known>" >&2
            echo "ERROR: Failed building wheel for quarto-cli" >&2
            exit "$STUB_PIP_STATUS"
        fi
        cp "$STUB_QUARTO" "$(dirname "$0")/quarto" ;;
    "-c import anncore, experiments") exit "${STUB_IMPORT_STATUS:-0}" ;;
esac"""


def stub(path: Path, name: str, body: str = "exit 0") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(name=name, body=body))
    path.chmod(0o755)


@pytest.fixture
def suite_script(tmp_path):
    """A function running the copied run_suite.sh; returns (status, stdout, calls as argv lists)."""
    root = tmp_path / "repo"
    for script in ("run_suite.sh", "render_report.sh"):
        if (REPO / "scripts" / script).exists():
            (root / "scripts").mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / "scripts" / script, root / "scripts" / script)
    stub(root / "scripts" / "setup.sh", "setup")
    stub(root / ".venv" / "bin" / "python", "python", PYTHON_BODY)
    tools = tmp_path / "tools"  # PATH: bash and dirname only, so no real quarto is found
    tools.mkdir()
    for tool in ("bash", "dirname", "mktemp", "grep", "sed", "tail", "rm", "cp"):
        (tools / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "calls.log"

    stub(tmp_path / "quarto-stub" / "quarto", "quarto")  # what the stub pip installs into .venv/bin

    def run(*args: str, quarto_status: int | None = None, **env: str) -> tuple[int, str, list[list[str]]]:
        path = str(tools)
        if quarto_status is not None:
            stub(tmp_path / "quarto-bin" / "quarto", "quarto", f"exit {quarto_status}")
            path = f"{tmp_path / 'quarto-bin'}:{path}"
        env = {"STUB_QUARTO": str(tmp_path / "quarto-stub" / "quarto"), **env}
        log.write_text("")
        result = subprocess.run(["bash", str(root / "scripts" / "run_suite.sh"), *args], capture_output=True,
                                text=True, timeout=60, env={"PATH": path, "HOME": str(tmp_path),
                                                            "STUB_LOG": str(log), **env})
        calls = [line.split("|") for line in log.read_text().splitlines()]
        return result.returncode, result.stdout + result.stderr, calls

    run.root = root
    return run


def python_calls(calls: list[list[str]], module: str = "experiments") -> list[list[str]]:
    """The stub python's arguments for ``-m experiments*`` (or another ``module``'s prefix)."""
    return [call[1:-1] for call in calls if call[0] == "python" and call[1] == "-m" and call[2].startswith(module)]


ARGS = ["--data-dir", "/data/fm", "--seeds", "0,1,2", "--quick", "--tracking-uri", "sqlite:////s/mlflow.db",
        "--device", "cpu", "--epochs", "3"]


def test_every_option_reaches_run_all_and_the_shared_ones_the_benchmark(suite_script):
    status, output, calls = suite_script(*ARGS)
    assert status == 0, output
    assert calls[0][0] == "setup"
    run_all, benchmark = python_calls(calls)
    assert run_all == ["-m", "experiments", "run", "all", *ARGS]
    assert benchmark == ["-m", "experiments.benchmark", "--log-mlflow", "--no-progress", "--data-dir", "/data/fm",
                         "--quick", "--tracking-uri", "sqlite:////s/mlflow.db", "--device", "cpu"]
    assert "Benchmark: python -m experiments.benchmark --log-mlflow" in output


def test_options_written_with_an_equals_sign_reach_the_benchmark_too(suite_script):
    status, output, calls = suite_script("--data-dir=/d", "--seeds=0", "--device=cpu")
    assert status == 0, output
    assert python_calls(calls)[1] == ["-m", "experiments.benchmark", "--log-mlflow", "--no-progress",
                                      "--data-dir=/d", "--device=cpu"]


def test_anncore_skip_benchmark_skips_it(suite_script):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1")
    assert status == 0, output
    assert [call[:4] for call in python_calls(calls)] == [["-m", "experiments", "run", "all"]]
    assert "Benchmark:" not in output


def test_a_failed_run_skips_the_benchmark_and_exits_1(suite_script):
    status, output, calls = suite_script(*ARGS, STUB_RUN_STATUS="1")
    assert status == 1
    assert len(python_calls(calls)) == 1  # no benchmark after a failed suite


def test_a_failed_benchmark_exits_1(suite_script):
    status, output, calls = suite_script(*ARGS, STUB_BENCHMARK_STATUS="2")
    assert status == 1 and len(python_calls(calls)) == 2


def test_failed_setup_stops_before_any_run(suite_script):
    stub(suite_script.root / "scripts" / "setup.sh", "setup", "exit 1")
    status, output, calls = suite_script(*ARGS)
    assert status == 1 and python_calls(calls) == []


def test_the_report_is_rendered_with_the_venv_python_when_quarto_is_on_path(suite_script):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1", quarto_status=0)
    assert status == 0, output
    renders = [call for call in calls if call[0] == "quarto"]
    assert renders and renders[0][1:3] == ["render", "report"]
    python = str(suite_script.root / ".venv" / "bin" / "python")
    assert all(call[-1] == f"QUARTO_PYTHON={python}" for call in renders)
    assert "Quarto is not installed" not in output


def test_a_failed_render_exits_1(suite_script):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1", quarto_status=1)
    assert status == 1 and [call for call in calls if call[0] == "quarto"]


def pip_calls(calls: list[list[str]]) -> list[list[str]]:
    return python_calls(calls, "pip")


def test_without_quarto_it_is_installed_as_readme_says_and_both_editions_rendered(suite_script):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1")
    assert status == 0, output
    assert pip_calls(calls) == [["-m", "pip", "install", "--quiet", "-e", ".[report]"]]
    renders = [call[1:-1] for call in calls if call[0] == "quarto"]
    assert renders == [["render", "report"], ["render", "report", "--profile", "ru"]]
    assert "Could not install Quarto" not in output and "The report, English and Russian:" in output


@pytest.mark.parametrize("run_status", [0, 1])
def test_a_failed_quarto_install_says_why_once_and_keeps_the_experiments_status(suite_script, run_status):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1", STUB_PIP_STATUS="1",
                                         STUB_RUN_STATUS=str(run_status))
    assert status == run_status, output
    assert len(pip_calls(calls)) == 1 and not [call for call in calls if call[0] == "quarto"]
    assert output.count("Could not install Quarto (Error downloading Quarto: <urlopen error") == 1, output
    assert "Quarto is not installed, so the report was not rendered" not in output  # one message, not two
    assert "bash scripts/render_report.sh" in output
    assert [call[0] for call in calls].count("setup") == 1  # the venv still imports: no repair


def test_a_failed_quarto_install_that_broke_the_venv_reinstalls_it(suite_script):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1", STUB_PIP_STATUS="1",
                                         STUB_IMPORT_STATUS="1")
    assert status == 0, output
    assert [call[0] for call in calls].count("setup") == 2  # once first, once to repair .venv


def test_with_the_install_turned_off_the_script_says_how_to_render_and_still_succeeds(suite_script):
    status, output, calls = suite_script(*ARGS, ANNCORE_SKIP_BENCHMARK="1", ANNCORE_NO_QUARTO_INSTALL="1")
    assert status == 0, output
    assert "Quarto is not installed, so the report was not rendered" in output
    assert not pip_calls(calls) and not [call for call in calls if call[0] == "quarto"]


def test_without_quarto_a_failed_run_still_exits_1(suite_script):
    status, output, calls = suite_script(*ARGS, STUB_RUN_STATUS="1", ANNCORE_NO_QUARTO_INSTALL="1")
    assert status == 1 and "Quarto is not installed" in output
