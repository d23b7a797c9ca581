"""Where a run came from: package versions, the git commit, and paths safe to log.

Nothing here may leak secrets or machine-specific details: no environment variables, and
paths are shown relative to the working directory or with the home folder as ``~``.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]  # experiments/tracking/provenance.py


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a run's numbers depend on, as MLflow params."""
    import mlflow
    import numpy
    import torch

    import anncore

    return {
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "mlflow_version": mlflow.__version__,
        "anncore_version": anncore.__version__,
    }


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout this code runs from (suffixed ``-dirty`` with local changes), or None."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit or None


def display_path(path: Path) -> str:
    """``path`` relative to the cwd when inside it, else absolute with the home folder shown as ``~``."""
    resolved = Path(path).expanduser().resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        pass
    try:
        return str(Path("~") / resolved.relative_to(Path.home().resolve()))
    except (ValueError, RuntimeError):
        return str(resolved)
