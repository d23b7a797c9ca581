"""The MLflow layout a suite run leaves is exactly the one recorded before the layout issue moved
the code (``tests/data/mlflow_layout.json``, written by ``python -m tests.mlflow_layout``): same
experiments, roles, arms, seeds, param names and values, metric names and artifact paths."""

from __future__ import annotations

import json
from pathlib import Path

from tests.mlflow_layout import suite_layout

RECORDED = Path(__file__).parent / "data" / "mlflow_layout.json"


def _key(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def test_suite_layout_matches_the_recorded_one(tmp_path: Path) -> None:
    from tests.idx_files import write_fashion_mnist

    recorded = json.loads(RECORDED.read_text())
    now = suite_layout(write_fashion_mnist(tmp_path / "data"))
    missing = sorted(set(map(_key, recorded)) - set(map(_key, now)))
    extra = sorted(set(map(_key, now)) - set(map(_key, recorded)))
    assert not missing and not extra, f"runs no longer logged:\n{missing[:3]}\nruns new or changed:\n{extra[:3]}"
    assert len(now) == len(recorded) == 30  # 24 before the sweep added its parent, 4 trials and champion
