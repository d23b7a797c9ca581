"""Failures, interruptions, reruns and two suites at once: every run ends with a definite status."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

import anncore.trainer as trainer
from experiments.__main__ import main
from tests.idx_files import write_fashion_mnist
from tests.mlflow_processes import run_cli

REPO = Path(__file__).resolve().parent.parent
TIMING_METRICS = {"epoch_time_s", "samples_per_sec", "eval_time_s", "train_time_s"}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An initialised, empty SQLite store, made once (creating the schema takes seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_store, tmp_path, tiny_fashion_root) -> dict:
    """A fresh copy of the empty store, and the options that point the suite at it."""
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(empty_store, path)
    uri = f"sqlite:///{path}"
    return {"uri": uri, "client": mlflow.MlflowClient(tracking_uri=uri),
            "options": ["--no-progress", "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri]}


def all_runs(store: dict, name: str) -> list:
    experiment = store["client"].get_experiment_by_name(f"anncore-{name}")
    if experiment is None:
        return []
    return list(store["client"].search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]))


def steps(store: dict, run, key: str) -> dict[int, float]:
    return {m.step: m.value for m in store["client"].get_metric_history(run.info.run_id, key)}


def fail_at_epoch(monkeypatch, epoch: int, error: BaseException) -> None:
    """Make training raise ``error`` when it reaches ``epoch`` (after the earlier epochs were logged)."""
    real = trainer.train_one_epoch

    def train_one_epoch(model, batches, optimizer, current, *args, **kwargs):
        if current == epoch:
            raise error
        return real(model, batches, optimizer, current, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_one_epoch", train_one_epoch)


def test_exception_in_a_run_marks_it_failed_and_the_suite_goes_on(store, monkeypatch):
    fail_at_epoch(monkeypatch, 2, RuntimeError("simulated crash in epoch 2"))
    status, out, err = run_cli(["run", "custom", "simple_ann", "--quick", "--epochs", "3", *store["options"]])
    assert status == 1
    [failed] = all_runs(store, "custom")
    assert failed.info.status == "FAILED"
    assert failed.data.tags["anncore.error"] == "RuntimeError: simulated crash in epoch 2"
    assert failed.data.params["hidden_sizes"] == "512,256"  # what was logged before stays
    for key in ("train_loss", "test_acc", "epoch_time_s", "samples_per_sec"):
        assert list(steps(store, failed, key)) == [1], key
    error_file = Path(failed.info.artifact_uri.removeprefix("file://")) / "error.txt"
    assert "Traceback" in error_file.read_text() and "simulated crash" in error_file.read_text()
    [finished] = all_runs(store, "simple_ann")
    assert finished.info.status == "FINISHED"
    assert "error: experiment custom failed: RuntimeError: simulated crash in epoch 2" in err
    assert "1 of 2 experiment(s) failed" in out and failed.info.run_id in out


def test_failed_child_fails_its_parent_and_keeps_the_finished_arm(store, monkeypatch):
    fail_at_epoch(monkeypatch, 2, ValueError("arm broke"))
    status, out, err = run_cli(["run", "depth", "--quick", "--epochs", "2", *store["options"]])
    assert status == 1
    runs = all_runs(store, "depth")
    parent = next(r for r in runs if r.data.tags["anncore.role"] == "parent")
    children = [r for r in runs if r.data.tags["anncore.role"] == "child"]
    assert parent.info.status == "FAILED" and parent.data.tags["anncore.error"] == "ValueError: arm broke"
    assert [c.info.status for c in children] == ["FAILED"]  # the first arm failed in epoch 2
    assert list(steps(store, children[0], "test_acc")) == [1]


def test_diverging_training_fails_with_the_reason(store):
    status, out, err = run_cli(["run", "custom", "--quick", "--lr", "1e20", *store["options"]])
    assert status == 1
    [run] = all_runs(store, "custom")
    assert run.info.status == "FAILED"
    assert run.data.tags["anncore.error"].startswith("NonFiniteLossError: training loss became nan")


def test_ctrl_c_kills_the_run_and_stops_the_suite(store, monkeypatch):
    fail_at_epoch(monkeypatch, 2, KeyboardInterrupt())
    status, out, err = run_cli(["run", "custom", "simple_ann", "--quick", "--epochs", "3", *store["options"]])
    assert status == 130
    [killed] = all_runs(store, "custom")
    assert killed.info.status == "KILLED" and killed.data.tags["anncore.error"] == "KeyboardInterrupt"
    assert list(steps(store, killed, "test_acc")) == [1]
    assert all_runs(store, "simple_ann") == []  # the suite stopped
    assert "KILLED" in out


def test_sigterm_kills_the_run(store, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "experiments", "run", "custom", "--epochs", "10000",
               "--hidden-sizes", "16", *store["options"]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        for _ in range(600):  # wait until the run has logged an epoch
            runs = all_runs(store, "custom")
            if runs and steps(store, runs[0], "test_acc"):
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err[-2000:]
    [run] = all_runs(store, "custom")
    assert run.info.status == "KILLED" and run.data.tags["anncore.error"] == "Terminated: SIGTERM"
    assert len(steps(store, run, "test_acc")) >= 1
    assert "Traceback" not in err


def test_rerun_reproduces_params_and_metrics(store):
    first = ["run", "custom", "--quick", "--epochs", "2", "--hidden-sizes", "64,32", "--dropout", "0.1",
             "--lr", "0.002", "--activation", "tanh", "--seeds", "3", *store["options"]]
    assert run_cli(first)[0] == 0
    [old] = all_runs(store, "custom")
    status, out, err = run_cli(["rerun", old.info.run_id, *store["options"]])
    assert status == 0, err
    [_, new] = all_runs(store, "custom")
    assert new.data.tags["anncore.rerun_of"] == old.info.run_id and new.info.status == "FINISHED"
    assert {k: v for k, v in new.data.params.items() if k != "git_commit"} == {
        k: v for k, v in old.data.params.items() if k != "git_commit"
    }
    assert new.data.params["architecture"] == "784-64-32-10" and new.data.params["seed"] == "3"
    keys = {name for name in old.data.metrics if not name.startswith("system/")} - TIMING_METRICS  # system/: sampled every 10 s
    assert keys >= {"train_loss", "test_acc", "final_test_acc"}
    for key in keys:
        assert steps(store, new, key) == steps(store, old, key), key


def test_rerun_refuses_unknown_runs_and_other_data(store, tmp_path, capsys):
    assert main(["rerun", "0123456789abcdef0123456789abcdef", *store["options"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'0123456789abcdef0123456789abcdef' does not exist" in err

    stranger = store["client"].create_run(store["client"].create_experiment("not-anncore")).info.run_id
    assert main(["rerun", stranger, *store["options"]]) == 2
    assert "anncore.experiment" in capsys.readouterr().err

    assert run_cli(["run", "custom", "--quick", "--epochs", "1", *store["options"]])[0] == 0
    [old] = all_runs(store, "custom")
    other = write_fashion_mnist(tmp_path / "other", seed=1)
    options = ["--tracking-uri", store["uri"], "--data-dir", str(other)]
    assert main(["rerun", old.info.run_id, *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sha256" in err
    assert len(all_runs(store, "custom")) == 1


def test_two_suites_at_once_on_one_new_store(tmp_path):
    """Both finish, with every run present and FINISHED: store creation and writes are serialised."""
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    command = [sys.executable, "-m", "experiments", "run", "hand_calculations", "simple_ann",
               "--tracking-uri", uri]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
                 for _ in range(2)]
    results = [(p, *p.communicate(timeout=300)) for p in processes]
    for process, out, err in results:
        assert process.returncode == 0, err[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    for name in ("hand_calculations", "simple_ann"):
        experiments = [e for e in client.search_experiments() if e.name == f"anncore-{name}"]
        assert len(experiments) == 1
        runs = client.search_runs([experiments[0].experiment_id])
        assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"], name
