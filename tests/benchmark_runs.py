"""Test plumbing for the report's performance section: log a real quick benchmark into a store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def log_quick_benchmark(data_dir: Path, store: Path) -> str:
    """Run ``python -m experiments.benchmark --quick --log-mlflow --profile`` into ``store``; return its URI.

    Parameters
    ----------
    data_dir : Path
        A FashionMNIST root (the tests' tiny one).
    store : Path
        The folder of the SQLite store ``mlflow.db`` (created or added to); also the working directory.

    Returns
    -------
    str
        The store's ``sqlite:///`` URI, the same as ``tests.test_report.run_experiments`` gives.
    """
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-m", "experiments.benchmark", "--quick", "--no-progress", "--log-mlflow", "--profile",
         "--data-dir", str(data_dir), "--tracking-uri", uri],
        cwd=store, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return uri
