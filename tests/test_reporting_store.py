"""reporting.store and reporting.section against a real SQLite MLflow store built here with
MLflow's own client: latest-run selection, provenance, artifacts, finding the store."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from reporting.section import Section
from reporting.store import Store, find_tracking_uri, format_time, run_command

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, in milliseconds
MINUTE = 60_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def make_run(client, experiment_id, start, status, role="single", device="cpu", parent=None):
    tags = {"anncore.experiment": "baseline", "anncore.role": role}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, start_time=start, tags=tags)
    client.log_param(run.info.run_id, "device", device)
    client.log_param(run.info.run_id, "quick", "True")
    client.set_terminated(run.info.run_id, status=status, end_time=start + MINUTE)
    return run.info.run_id


@pytest.fixture(scope="module")
def store_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str], Path]:
    """A store with four baseline runs: older and newer finished, a newest failed one, a newer child."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    (root / "mlruns").mkdir()
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        "anncore-baseline", artifact_location=(root / "mlruns" / "artifacts").as_uri()
    )
    runs = {
        "older": make_run(client, experiment_id, T0, "FINISHED", device="cuda"),
        "newer": make_run(client, experiment_id, T0 + 10 * MINUTE, "FINISHED", role="parent"),
        "failed": make_run(client, experiment_id, T0 + 20 * MINUTE, "FAILED"),
    }
    runs["child"] = make_run(client, experiment_id, T0 + 30 * MINUTE, "FINISHED", role="child", parent=runs["newer"])
    files = root / "files"
    files.mkdir()
    pd.DataFrame({"epoch": [1, 2], "test_acc": [0.5, 0.75]}).to_csv(files / "history.csv", index=False)
    (files / "trace.json").write_text(json.dumps({"y_hat": [0.5426]}))
    (files / "sample_images.png").write_bytes(PNG)
    for name in ("history.csv", "sample_images.png"):
        client.log_artifact(runs["newer"], str(files / name))
    client.log_artifact(runs["newer"], str(files / "trace.json"), "traces")
    return uri, runs, root


def test_latest_finished_top_level_run_is_chosen(store_runs) -> None:
    uri, runs, _ = store_runs
    run = Store(uri).latest_finished_run("baseline")
    assert run.run_id == runs["newer"]  # not the failed one, not the child


def test_provenance_of_a_run(store_runs) -> None:
    uri, runs, _ = store_runs
    store = Store(uri)
    run = store.latest_finished_run("baseline")
    assert run.start_time == datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)
    assert run.end_time == datetime(2026, 1, 1, 0, 11, tzinfo=timezone.utc)
    assert run.device == "cpu" and run.quick
    assert run.citation() == f"run `{runs['newer'][:8]}` (anncore-baseline, 2026-01-01 00:10 UTC, cpu)"
    assert [child.run_id for child in store.child_runs(run)] == [runs["child"]]
    assert store.run_by_id("baseline", runs["older"]).device == "cuda"
    assert format_time(None) == "unknown"


def test_artifacts_load_as_frames_json_and_bytes(store_runs) -> None:
    uri, _, _ = store_runs
    store = Store(uri)
    run = store.latest_finished_run("baseline")
    assert store.load_csv(run, "history.csv")["test_acc"].tolist() == [0.5, 0.75]
    assert store.load_json(run, "traces/trace.json") == {"y_hat": [0.5426]}
    assert store.load_bytes(run, "sample_images.png") == PNG
    assert store.has_artifact(run, "traces/trace.json") and not store.has_artifact(run, "missing.csv")
    with pytest.raises(FileNotFoundError, match="'missing.csv'"):
        store.load_csv(run, "missing.csv")


def test_study_without_runs_gives_none(store_runs) -> None:
    uri, _, _ = store_runs
    assert Store(uri).latest_finished_run("depth") is None


def test_missing_database_is_an_empty_store_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "mlflow.db"
    store = Store(f"sqlite:///{db}")
    assert not store.exists and store.latest_finished_run("baseline") is None
    assert not db.exists()


def test_store_is_found_upward_from_report_folder(store_runs, tmp_path: Path, monkeypatch) -> None:
    _, _, root = store_runs
    report = root / "report" / "nested"
    report.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert find_tracking_uri(report) == f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # nothing above: the experiments' default in the cwd
    assert find_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    assert find_tracking_uri(report) == f"sqlite:///{tmp_path / 'other.db'}"


def test_run_command_names_the_accepted_experiments() -> None:
    assert run_command("depth") == "python -m experiments run depth"
    assert run_command("benchmark") == "python -m experiments.benchmark --data-dir <data-dir> --log-mlflow"
    with pytest.raises(ValueError, match=r"unknown experiment 'deep'; accepted: .*activation_study.*benchmark"):
        run_command("deep")


def test_section_status_names_the_run_or_the_command(store_runs, tmp_path: Path, monkeypatch) -> None:
    uri, runs, _ = store_runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    status = Section("baseline").status().data
    assert f"`{runs['newer'][:8]}`" in status and "with 1 child run (" in status
    missing = Section("depth")
    assert "python -m experiments run depth" in missing.status().data

    @missing.output
    def never_called(store, run):
        raise AssertionError("called without a run")

    assert never_called() is None
    with pytest.raises(ValueError, match="unknown experiment"):
        Section("nonsense")
