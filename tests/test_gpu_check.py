"""scripts/gpu_check.sh on a machine without a GPU: its syntax, its dry run, its skip and its errors.

The GPU path itself needs a CUDA machine; ``ANNCORE_GPU_CHECK_DEVICE=cpu`` runs the same steps on
the CPU, which is too slow for the suite (``run all``) and is run by hand (see the README).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dry_run_lists_the_three_steps_on_cuda(tmp_path: Path) -> None:
    out = tmp_path / "check out"
    result = run_script("--dry-run", "--data-dir", "/data/with space", "--out", str(out))
    assert result.returncode == 0, result.stderr
    steps = {line.split(":")[0].strip(): line for line in result.stdout.splitlines()[1:]}
    assert list(steps) == ["cuda tests", "run all", "benchmark"]
    assert "-m pytest -m cuda" in steps["cuda tests"]
    store = f"sqlite:///{out.resolve()}/mlflow.db".replace(" ", "\\ ")
    for name in ("run all", "benchmark"):
        assert "--device cuda --quick --data-dir /data/with\\ space" in steps[name], name
        assert f"--tracking-uri {store}" in steps[name], name
    assert "-m experiments run all" in steps["run all"]
    assert "-m experiments.benchmark" in steps["benchmark"] and "--log-mlflow" in steps["benchmark"]
    assert not out.exists()  # nothing was run, so the empty folder is not left behind


def test_full_drops_quick_from_the_steps() -> None:
    result = run_script("--dry-run", "--full")
    assert result.returncode == 0 and "--quick" not in result.stdout and result.stdout.count("--device cuda") == 2


def test_without_cuda_it_says_skipped_and_exits_77(tmp_path: Path) -> None:
    result = run_script("--out", str(tmp_path / "out"), CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 77, result.stdout + result.stderr
    assert result.stdout.startswith("GPU check summary: SKIPPED, no CUDA device here")
    assert "Nothing was run" in result.stdout and not (tmp_path / "out").exists()


def test_bad_arguments_exit_2_naming_them() -> None:
    result = run_script("--gpu")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown argument '--gpu'; accepted: ")
    result = run_script("--dry-run", ANNCORE_GPU_CHECK_DEVICE="tpu")
    assert result.returncode == 2 and "ANNCORE_GPU_CHECK_DEVICE=tpu; accepted: cuda (default) or cpu" in result.stderr
