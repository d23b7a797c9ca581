"""A real MLflow store for the report tests, and the report executed against it in each language.

The session's one ``python -m experiments run all --quick --seeds 0,1`` (``tests/conftest.py``:
``suite_0_1``, copied) and ``python -m experiments.benchmark --quick --log-mlflow`` fill a
temporary store on the tiny dataset once per test session (``full_store``); every chunk of ``report/index.qmd`` then runs in a real
Jupyter kernel started in ``report/``, once for English (``full_report``) and once with
``QUARTO_PROFILE=ru``, as ``quarto render report --profile ru`` sets it (``full_report_ru``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.qmd_notebook import execute_notebook, qmd_notebook

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "report"
INDEX = REPORT / "index.qmd"


def run_experiments(names: list[str], data_dir: Path, store: Path) -> str:
    """Run ``python -m experiments run NAMES --quick`` into a fresh SQLite store; return its URI."""
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-m", "experiments", "run", *names, "--quick",
         "--data-dir", str(data_dir), "--tracking-uri", uri],
        cwd=store, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return uri


def execute_report(uri: str, profile: str | None = None):
    """Every chunk of the report, executed in a kernel in report/ that reads the store at ``uri``.

    ``profile`` is the Quarto profile the render would run with (``"ru"``: the Russian edition);
    without one the kernel sees no ``QUARTO_PROFILE`` and no ``ANNCORE_REPORT_LANG``, as a plain
    ``quarto render report`` from a clean shell.
    """
    env = {"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO), "QUARTO_PROFILE": profile or "", "ANNCORE_REPORT_LANG": ""}
    return execute_notebook(qmd_notebook(INDEX), REPORT, env)
