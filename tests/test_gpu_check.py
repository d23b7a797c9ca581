"""scripts/gpu_check.sh on a machine without a GPU: its syntax, its dry run, its skip and its errors, and
its sweep steps run on the CPU with their summary line (trials per minute, stacked vs one at a time).

The GPU path itself needs a CUDA machine; ``ANNCORE_GPU_CHECK_DEVICE=cpu`` runs the same steps on
the CPU, which is too slow for the suite as a whole (``run all``) and is run by hand (see the README).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def run_script(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dry_run_lists_the_three_steps_on_cuda(tmp_path: Path) -> None:
    out = tmp_path / "check out"
    result = run_script("--dry-run", "--data-dir", "/data/with space", "--out", str(out))
    assert result.returncode == 0, result.stderr
    steps = {line.split(":")[0].strip(): line for line in result.stdout.splitlines()[1:]}
    assert list(steps) == ["cuda tests", "run all", "benchmark", "sweep K=1", "sweep stacked"]
    assert "-m pytest -m cuda" in steps["cuda tests"]
    store = f"sqlite:///{out.resolve()}/mlflow.db".replace(" ", "\\ ")
    for name in ("run all", "benchmark", "sweep K=1", "sweep stacked"):
        assert "--device cuda --quick --data-dir /data/with\\ space" in steps[name], name
        assert f"--tracking-uri {store}" in steps[name], name
    assert "-m experiments run all" in steps["run all"]
    # the same short sweep twice: one trial at a time, then stacked at CUDA's default K (no --trials-per-batch)
    assert "-m experiments run sweep" in steps["sweep K=1"] and "--trials-per-batch 1" in steps["sweep K=1"]
    assert "-m experiments run sweep" in steps["sweep stacked"] and "--trials-per-batch" not in steps["sweep stacked"]
    trials = {name: re.search(r"--trials (\d+)", steps[name]).group(1) for name in ("sweep K=1", "sweep stacked")}
    assert trials["sweep K=1"] == trials["sweep stacked"]
    assert "-m experiments.benchmark" in steps["benchmark"] and "--log-mlflow" in steps["benchmark"]
    assert not out.exists()  # nothing was run, so the empty folder is not left behind


def test_full_drops_quick_from_the_steps() -> None:
    result = run_script("--dry-run", "--full")
    assert result.returncode == 0 and "--quick" not in result.stdout and result.stdout.count("--device cuda") == 4


def test_steps_selects_the_steps_in_their_order() -> None:
    result = run_script("--dry-run", "--steps", "sweeps,tests")
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0].strip() for line in result.stdout.splitlines()[1:]] == ["cuda tests", "sweep K=1", "sweep stacked"]


def test_without_cuda_it_says_skipped_and_exits_77(tmp_path: Path) -> None:
    result = run_script("--out", str(tmp_path / "out"), CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 77, result.stdout + result.stderr
    assert result.stdout.startswith("GPU check summary: SKIPPED, no CUDA device here")
    assert "Nothing was run" in result.stdout and not (tmp_path / "out").exists()


def test_bad_arguments_exit_2_naming_them_and_leave_no_folder(tmp_path: Path) -> None:
    result = run_script("--gpu", TMPDIR=str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: unknown argument '--gpu'; accepted: ")
    result = run_script("--dry-run", TMPDIR=str(tmp_path), ANNCORE_GPU_CHECK_DEVICE="tpu")
    assert result.returncode == 2 and "ANNCORE_GPU_CHECK_DEVICE=tpu; accepted: cuda (default) or cpu" in result.stderr
    result = run_script("--dry-run", "--steps", "sweeps,gpu", TMPDIR=str(tmp_path))
    assert result.returncode == 2 and "error: --steps 'sweeps,gpu': unknown step 'gpu'; accepted: " in result.stderr
    result = run_script("--dry-run", TMPDIR=str(tmp_path), ANNCORE_GPU_CHECK_TRIALS_PER_BATCH="0")
    assert result.returncode == 2 and "ANNCORE_GPU_CHECK_TRIALS_PER_BATCH=0; accepted: " in result.stderr
    result = run_script("--dry-run", TMPDIR=str(tmp_path), ANNCORE_GPU_CHECK_SWEEP_TRIALS="many")
    assert result.returncode == 2 and "ANNCORE_GPU_CHECK_SWEEP_TRIALS=many; accepted: " in result.stderr
    assert list(tmp_path.iterdir()) == []  # no output folder made (mktemp -d under TMPDIR) for a refused run


def test_the_sweep_steps_on_the_cpu_print_trials_per_minute_stacked_vs_one_at_a_time(tiny_fashion_root, tmp_path) -> None:
    """Both sweeps run (here on the CPU, the stacked one with K = 4), and the summary's line is their parents' figures."""
    out = tmp_path / "out"
    result = run_script("--steps", "sweeps", "--data-dir", str(tiny_fashion_root), "--out", str(out), timeout=900,
                        ANNCORE_GPU_CHECK_DEVICE="cpu", ANNCORE_GPU_CHECK_TRIALS_PER_BATCH="4",
                        ANNCORE_GPU_CHECK_SWEEP_TRIALS="12", PYTHON_BIN=sys.executable)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if "trials per minute, stacked vs one at a time" in line)
    stacked, k, one = re.search(r"at a time: ([\d.]+) \(K=(\d+)\) vs ([\d.]+) \(K=1\)", line).groups()
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anncore-sweep").experiment_id
    pace = {}
    for parent in client.search_runs([experiment], "tags.`anncore.role` = 'parent'"):
        pace[parent.data.tags["anncore.study_name"]] = parent.data.metrics
    assert float(stacked) == round(pace["gpu-check-stacked"]["trials_per_minute"], 1) and k == "4"
    assert float(one) == round(pace["gpu-check-one-at-a-time"]["trials_per_minute"], 1)
    assert pace["gpu-check-one-at-a-time"]["trials_per_batch"] == 1
    assert pace["gpu-check-stacked"]["trials_this_invocation"] == pace["gpu-check-one-at-a-time"]["trials_this_invocation"] == 12
    assert "sweep K=1" in result.stdout and "sweep stacked" in result.stdout and "PASS" in result.stdout
