"""The MLflow layout a suite run leaves is exactly the one recorded before the layout issue moved
the code (``tests/data/mlflow_layout.json``, written by ``python -m tests.mlflow_layout``): same
experiments, roles, arms, seeds, param names and values, metric names and artifact paths. The
values Optuna's TPE sampler chose for the sweep (and the champion's architecture that follows)
are compared by form (``tests.mlflow_layout.comparable``): they move with Optuna and CPU numerics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mlflow_layout import comparable

RECORDED = Path(__file__).parent / "data" / "mlflow_layout.json"


def _key(record: dict) -> str:
    return json.dumps(comparable(record), sort_keys=True)


def test_suite_layout_matches_the_recorded_one(suite_0_1: dict) -> None:
    """The session's ``run all --quick --seeds 0,1`` (tests/conftest.py), read before other tests add runs."""
    assert suite_0_1["status"] == 0, suite_0_1["err"][-3000:]
    recorded, now = json.loads(RECORDED.read_text()), suite_0_1["layout"]
    missing = sorted(set(map(_key, recorded)) - set(map(_key, now)))
    extra = sorted(set(map(_key, now)) - set(map(_key, recorded)))
    assert not missing and not extra, f"runs no longer logged:\n{missing[:3]}\nruns new or changed:\n{extra[:3]}"
    assert len(now) == len(recorded) == 30  # 24 before the sweep added its parent, 4 trials and champion


def test_the_sweeps_sampled_values_are_compared_by_form() -> None:
    """Another TPE draw (values, depth, champion) compares equal; a malformed or inconsistent one does not."""
    recorded = json.loads(RECORDED.read_text())
    (trial,) = [r for r in recorded if r["arm"] == "trial-0" and r["experiment"] == "anncore-sweep"]
    redrawn = {**trial, "params": {**trial["params"], "learning_rate": "0.0731", "dropout_rate": "0.25",
                                   "architecture": "784-16-8-10", "n_hidden_layers": "2",
                                   "parameter_count": str(784 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10)}}
    assert _key(redrawn) == _key(trial)
    # Depth and architecture disagreeing, a count not the architecture's, a value of the wrong form.
    for bad in ({"n_hidden_layers": "1"}, {"parameter_count": "12"}, {"learning_rate": "fast"}):
        with pytest.raises(AssertionError):
            _key({**redrawn, "params": {**redrawn["params"], **bad}})
    changed = {**redrawn, "params": {**redrawn["params"], "epochs": "3"}}  # not sampled: compared exactly
    assert _key(changed) != _key(trial)
