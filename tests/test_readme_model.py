"""The README's lines that load the baseline model and classify a test image, run exactly as written.

The code block under "Using the trained model" runs in a checkout-like folder: the default store
``./mlruns`` filled by ``python -m experiments run baseline --quick`` and the data at
``../shared/data`` (the tests' tiny FashionMNIST), as on the course machines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parent.parent


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_loads_the_baseline_and_classifies_a_test_image(tiny_fashion_root: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "anncore"
    checkout.mkdir()
    shutil.copytree(tiny_fashion_root, tmp_path / "shared" / "data")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    made = subprocess.run([sys.executable, "-m", "experiments", "run", "baseline", "--quick", "--no-progress",
                           "--data-dir", "../shared/data"], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]

    code = readme_block("### Using the trained model")
    assert "load_model" in code and ".eval()" not in code
    result = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    # The same prediction as the run's own record of test image 0.
    client = MlflowClient(f"sqlite:///{checkout / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("anncore-baseline").experiment_id])
    samples = pd.read_csv(client.download_artifacts(run.info.run_id, "sample_predictions.csv", str(tmp_path)))
    first = samples.iloc[0]
    line = result.stdout.strip().splitlines()[-1]
    assert line == (f"test image 0: {first['predicted_name']} ({first['confidence']:.1%}), "
                    f"really {first['true_name']}"), line  # fmt: skip
