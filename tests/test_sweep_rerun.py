"""``rerun`` of a sweep's parent run continues that parent's study, in that study's storage, with the
budget and workers it was run with and the same invocation (both read back whole from the parent's
``anncore.sweep_options`` and ``anncore.invocation`` tags), and no password is ever written there."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import optuna

from experiments.search.storage import without_password
from experiments.settings import INVOCATION_TAG, SWEEP_OPTIONS_TAG, Invocation, SweepOptions
from tests.mlflow_processes import run_cli


def test_rerun_of_the_parent_continues_its_own_study_and_storage(tiny_fashion_root: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = f"sqlite:///{tmp_path / 'elsewhere' / 'class-a.db'}"
    (tmp_path / "elsewhere").mkdir()
    common = ["--no-progress", "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri]
    status, _, err = run_cli(["run", "sweep", "--quick", "--device", "cpu", "--epochs", "1", "--seeds", "7", "--trials", "2",
                              "--study-name", "class-a", "--storage", storage, *common])
    assert status == 0, err
    client = mlflow.MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("anncore-sweep").experiment_id
    [parent] = client.search_runs([experiment_id], "tags.`anncore.role` = 'parent'")
    logged = json.loads(parent.data.tags[SWEEP_OPTIONS_TAG])
    assert logged == {"trials": 2, "timeout_s": None, "study_name": "class-a", "storage": storage, "workers": 1,
                      "trials_per_batch": None}
    asked = Invocation(epochs=1, seeds=(7,), device="cpu", quick=True)
    assert Invocation.from_json(parent.data.tags[INVOCATION_TAG]) == asked

    status, _, err = run_cli(["rerun", parent.info.run_id, *common])  # no sweep option given again
    assert status == 0, err
    study = optuna.load_study(study_name="class-a", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]  # two more trials in the same study
    assert not (tmp_path / "optuna.db").exists()  # the default storage was never made
    parents = client.search_runs([experiment_id], "tags.`anncore.role` = 'parent'")
    assert [p.info.run_id for p in parents] == [parent.info.run_id] and parents[0].info.status == "FINISHED"
    trials = client.search_runs([experiment_id], "tags.`anncore.trial_number` != ''")
    assert sorted(int(r.data.tags["anncore.trial_number"]) for r in trials) == [0, 1, 2, 3]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parent.info.run_id}
    # the rerun asked exactly what the first invocation asked (a seed other than 7 would not continue the study)
    assert Invocation.from_json(parents[0].data.tags[INVOCATION_TAG]) == asked
    assert json.loads(parents[0].data.tags[SWEEP_OPTIONS_TAG]) == logged
    reruns = [r for r in trials if r.data.tags.get("anncore.rerun_of") == parent.info.run_id]
    assert len(reruns) == 2 and {Invocation.from_json(r.data.tags[INVOCATION_TAG]) for r in reruns} == {asked}


def test_the_logged_options_never_hold_a_password() -> None:
    url = "postgresql+psycopg://student:s3cret@lab-server:5432/optuna"
    assert without_password(url) == "postgresql+psycopg://student@lab-server:5432/optuna"
    assert without_password("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    options = SweepOptions(trials=3, study_name="x", storage=without_password(url), workers=2)
    assert "s3cret" not in options.to_json()
    assert SweepOptions.from_json(options.to_json()) == options
