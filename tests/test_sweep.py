"""The architecture search (``run sweep``): Optuna and MLflow agree, the champion is registered and
served, workers share a study, resume continues it, a killed worker's trial fails, and bad input
is refused before anything is made. Tiny data, ``--quick``, a few trials of 1-2 epochs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
import requests
import torch

from experiments.settings import Invocation, RunSettings
from experiments.tracking import datasets
from experiments.search.storage import GRACE_PERIOD_S
from experiments.tracking.registry import REGISTERED_MODEL
from experiments.server.class_server import stop_process_group
from tests.mlflow_processes import free_port, run_cli

REPO = Path(__file__).resolve().parent.parent
QUICK = ["--quick", "--device", "cpu", "--no-progress"]


def sweep_args(data_dir: Path, folder: Path, *extra: str) -> list[str]:
    return ["run", "sweep", *QUICK, "--data-dir", str(data_dir), "--tracking-uri",
            f"sqlite:///{folder / 'mlflow.db'}", *extra]


def storage_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'optuna.db'}"


def load_study(folder: Path, name: str = "fashion-mnist-quick") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url(folder))


def sweep_runs(folder: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anncore-sweep")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def trial_runs(folder: Path, study: str = "fashion-mnist-quick") -> list:
    return [r for r in sweep_runs(folder) if "anncore.trial_number" in r.data.tags
            and r.data.tags.get("anncore.study_name") == study]


def parent_of(folder: Path, study: str = "fashion-mnist-quick"):
    parents = [r for r in sweep_runs(folder) if r.data.tags.get("anncore.role") == "parent"
               and r.data.tags.get("anncore.study_name") == study]
    assert len(parents) == 1, f"one parent per study, got {len(parents)}"
    return parents[0]


def quick_settings(data_dir: Path) -> RunSettings:
    return RunSettings(Invocation(quick=True, device="cpu"), data_dir=data_dir, download=False, progress=False)


@pytest.fixture(scope="module")
def tiny_sweep(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """One in-process ``run sweep --quick --trials 4 --epochs 2``, with every evaluation and every
    training pass recorded (the images each was given, as anncore's trainer received them)."""
    import anncore.trainer as trainer

    folder = tmp_path_factory.mktemp("sweep")
    evaluated: list[torch.Tensor] = []
    trained: list[torch.Tensor] = []
    real_evaluate, real_epoch_eval = trainer.evaluate, trainer._loss_and_accuracy
    real_train_one_epoch = trainer.train_one_epoch

    def evaluate(model, data, *args, **kwargs):
        evaluated.append(data.x)
        return real_evaluate(model, data, *args, **kwargs)

    def epoch_eval(model, data, *args, **kwargs):
        evaluated.append(data.x)
        return real_epoch_eval(model, data, *args, **kwargs)

    def train_one_epoch(model, batches, *args, **kwargs):
        trained.append(batches.data.x)
        return real_train_one_epoch(model, batches, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "evaluate", evaluate)
        patch.setattr(trainer, "_loss_and_accuracy", epoch_eval)
        patch.setattr(trainer, "train_one_epoch", train_one_epoch)
        status, out, err = run_cli(sweep_args(tiny_fashion_root, folder, "--trials", "4", "--epochs", "2"))
    assert status == 0, err
    return {"folder": folder, "evaluated": evaluated, "trained": trained,
            "data": datasets.load(quick_settings(tiny_fashion_root))}


def test_optuna_and_mlflow_agree_trial_by_trial(tiny_sweep) -> None:
    folder = tiny_sweep["folder"]
    study = load_study(folder)
    by_number = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}
    assert sorted(by_number) == [t.number for t in study.trials] == [0, 1, 2, 3]
    parent = parent_of(folder)
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert run.data.tags["anncore.trial_state"] == trial.state.name
        params = run.data.params
        widths = [trial.params[f"width_{k}"] for k in range(1, trial.params["n_hidden_layers"] + 1)]
        assert params["architecture"] == "-".join(map(str, [784, *widths, 10]))
        assert params["activation"] == trial.params["activation"]
        assert float(params["dropout_rate"]) == trial.params["dropout"]
        assert float(params["learning_rate"]) == trial.params["learning_rate"]
        assert int(params["batch_size"]) == trial.params["batch_size"]
        history = run.data.metrics
        assert history["epochs_run"] == len(trial.intermediate_values)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert run.info.status == "FINISHED"
            assert history["final_val_acc"] == pytest.approx(trial.value, abs=1e-12)
        client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        val_acc = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_acc")}
        assert val_acc == pytest.approx(trial.intermediate_values)


def _artifact(run, path: str, folder: Path) -> Path:
    """``path`` of ``run``, downloaded under ``folder`` (MLflow's default is a new folder in /tmp, never removed)."""
    downloads = folder / "downloads" / run.info.run_id
    downloads.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=path, dst_path=str(downloads),
                                                    tracking_uri=f"sqlite:///{folder / 'mlflow.db'}"))


def test_parent_artifacts_hold_what_they_claim(tiny_sweep) -> None:
    folder = tiny_sweep["folder"]
    study, parent = load_study(folder), parent_of(folder)
    table = pd.read_csv(_artifact(parent, "trials.csv", folder))
    assert list(table["number"]) == [t.number for t in study.trials]
    assert list(table["state"]) == [t.state.name for t in study.trials]
    runs = {r.info.run_id: r for r in trial_runs(folder)}
    assert set(table["run_id"]) == set(runs)
    assert int(parent.data.metrics["epochs_run"]) == sum(len(t.intermediate_values) for t in study.trials)
    assert parent.data.metrics["epochs_without_pruning"] == 2 * len(study.trials)
    best = json.loads(_artifact(parent, "best_params.json", folder).read_text())
    assert best["number"] == study.best_trial.number and best["params"] == study.best_trial.params
    importances = pd.read_csv(_artifact(parent, "importances.csv", folder))
    if len(importances):
        assert set(importances["parameter"]) <= set(study.best_trial.params)
        assert importances["importance"].sum() == pytest.approx(1.0)
    else:
        assert parent.data.tags["anncore.importances_note"]
    assert _artifact(parent, "history.png", folder).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The charts as logged (their Vega-Lite spec in the HTML page): each point is a trial of
    # trials.csv at its accuracy, the line the best complete value so far.
    points, best = history_layers(embedded_spec(_artifact(parent, "history.html", folder)))
    assert points == expected_points(table)
    complete = table[table["state"] == "COMPLETE"].sort_values("number")
    assert best == list(zip(complete["number"], np.maximum.accumulate(complete["value"].to_numpy())))
    parameters = embedded_spec(_artifact(parent, "parameters.html", folder))
    assert len(parameters["concat"]) >= 3
    assert all(panel_points(panel, parameters) == expected_points(table) for panel in parameters["concat"])
    space = pd.read_csv(_artifact(parent, "search_space.csv", folder))
    assert {"n_hidden_layers", "learning_rate", "batch_size"} <= set(space["parameter"])


def test_champion_is_registered_loads_and_predicts(tiny_sweep) -> None:
    folder, data = tiny_sweep["folder"], tiny_sweep["data"]
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    version = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
    champion = client.get_run(version.run_id)
    assert champion.data.tags["anncore.champion_trial"] == str(load_study(folder).best_trial.number)
    assert champion.data.tags["mlflow.parentRunId"] == parent_of(folder).info.run_id
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@champion")
    logits = np.asarray(model.predict(data.test.x.numpy().reshape(len(data.test), -1)))
    accuracy = float((logits.argmax(axis=1) == data.test.y.numpy()).mean())
    assert accuracy == pytest.approx(champion.data.metrics["final_test_acc"], abs=1e-9)


def test_test_set_is_evaluated_once_and_only_for_the_champion(tiny_sweep) -> None:
    test_x = tiny_sweep["data"].test.x
    on_test = [x for x in tiny_sweep["evaluated"] if x.shape == test_x.shape and torch.equal(x, test_x)]
    assert len(on_test) == 1
    for run in trial_runs(tiny_sweep["folder"]):
        assert not [name for name in run.data.metrics if "test" in name], run.data.metrics
        assert run.data.params["evaluated_on"] == "validation"


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in x.numpy().reshape(len(x), -1)}


def test_the_validation_split_never_overlaps_the_test_set(tiny_sweep) -> None:
    """What the trials really trained and were judged on (recorded inside anncore's trainer): the
    same training images every epoch of every trial, judged on the rest of the training set, the
    two disjoint and neither touching the test set; only the champion's retraining gets the whole
    training set."""
    data, folder = tiny_sweep["data"], tiny_sweep["folder"]
    test_x, all_train = data.test.x, _rows(data.train.x)
    study = load_study(folder)
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    trials_trained = [x for x in tiny_sweep["trained"] if len(x) != len(data.train)]
    champion_trained = [x for x in tiny_sweep["trained"] if len(x) == len(data.train)]
    assert len(trials_trained) == epochs and champion_trained  # one pass per epoch run, then the champion
    assert all(torch.equal(x, data.train.x) for x in champion_trained)
    search_train = trials_trained[0]
    assert all(torch.equal(x, search_train) for x in trials_trained)  # one seeded split for every trial
    judged = [x for x in tiny_sweep["evaluated"] if not (x.shape == test_x.shape and torch.equal(x, test_x))]
    on_validation = [x for x in judged if len(x) + len(search_train) == len(data.train)]
    assert len(on_validation) >= epochs  # each trial epoch judged once, on the held-out part
    validation = on_validation[0]
    assert all(torch.equal(x, validation) for x in on_validation)
    train_rows, validation_rows = _rows(search_train), _rows(validation)
    assert len(train_rows) == len(search_train) and len(validation_rows) == len(validation)  # no repeats
    assert not train_rows & validation_rows and train_rows | validation_rows == all_train
    assert not all_train & _rows(test_x)
    for run in trial_runs(folder):
        assert int(run.data.params["validation_size"]) == len(validation)
        assert int(run.data.params["search_train_size"]) == len(search_train)


def test_a_study_continued_with_other_options_is_refused(tiny_sweep, tiny_fashion_root) -> None:
    folder = tiny_sweep["folder"]
    before = len(sweep_runs(folder))
    status, _, err = run_cli(sweep_args(tiny_fashion_root, folder, "--trials", "1", "--epochs", "3"))
    assert status == 2 and err.startswith("error: study 'fashion-mnist-quick' was made with epochs=2")
    assert len(sweep_runs(folder)) == before


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    environment = {**os.environ, **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([sys.executable, "-m", "experiments", *args], cwd=REPO, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_workers_and_invocations_share_one_study(tiny_fashion_root, tmp_path) -> None:
    """``--workers 2`` runs exactly its trials; then two invocations at once (as on two machines) continue it."""
    first = _cli(*sweep_args(tiny_fashion_root, tmp_path, "--trials", "4", "--epochs", "3", "--workers", "2"))
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert [t.number for t in load_study(tmp_path).trials] == [0, 1, 2, 3]
    both = [_cli(*sweep_args(tiny_fashion_root, tmp_path, "--trials", "2", "--epochs", "3")) for _ in range(2)]
    for invocation in both:
        out, err = invocation.communicate(timeout=300)
        assert invocation.returncode == 0, err
    study = load_study(tmp_path)
    assert [t.number for t in study.trials] == list(range(8))  # resumed numbering, no duplicates
    workers = [t.user_attrs["worker"] for t in study.trials[4:]]
    assert len(set(workers)) == 2 and all(workers.count(w) == 2 for w in workers)
    numbers = [int(r.data.tags["anncore.trial_number"]) for r in trial_runs(tmp_path)]
    assert sorted(numbers) == list(range(8))  # each trial in MLflow exactly once
    parent = parent_of(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_trials"] == 8
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs(tmp_path)} == {parent.info.run_id}


def _wait_for_running_trial(folder: Path, timeout_s: float = 120) -> None:
    """Until a RUNNING trial has reported an epoch (read with sqlite3: polling through Optuna is too slow)."""
    import sqlite3

    query = ("SELECT count(*) FROM trials t JOIN trial_intermediate_values v ON v.trial_id = t.trial_id "
             "WHERE t.state = 'RUNNING'")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            with contextlib.closing(sqlite3.connect(folder / "optuna.db", timeout=1)) as connection:
                if connection.execute(query).fetchone()[0]:
                    return
        time.sleep(0.05)
    pytest.fail("no trial started reporting epochs in time")


def test_a_killed_worker_leaves_its_trial_failed_and_the_study_goes_on(tiny_fashion_root, tmp_path) -> None:
    args = sweep_args(tiny_fashion_root, tmp_path, "--trials", "1", "--epochs", "12", "--study-name", "killed")
    worker = _cli(*args, start_new_session=True)
    try:
        _wait_for_running_trial(tmp_path)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate()
    time.sleep(GRACE_PERIOD_S + 1)  # at least this long: the dead worker's heartbeat is stale
    # --trials 1 and no --timeout: exactly one new trial, however long this loaded machine takes
    # to start its worker (a deadline could pass before any trial began).
    resumed = _cli(*sweep_args(tiny_fashion_root, tmp_path, "--trials", "1", "--epochs", "12", "--study-name",
                               "killed"))
    out, err = resumed.communicate(timeout=600)  # only a hang gets here
    assert resumed.returncode == 0, err
    trials = load_study(tmp_path, "killed").trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "FAIL"), (1, "COMPLETE")], err
    killed = [r for r in trial_runs(tmp_path, "killed") if r.data.tags["anncore.trial_number"] == "0"][0]
    assert killed.info.status == "KILLED" and killed.data.tags["anncore.trial_state"] == "FAIL"
    assert parent_of(tmp_path, "killed").info.status == "FINISHED"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--trials", "0"], "argument --trials: '0' is out of range"),
        (["--timeout", "-5"], "argument --timeout: '-5' is not positive"),
        (["--storage", "redis://127.0.0.1/0"], "has unsupported scheme 'redis'"),
        (["--storage", "postgresql+psycopg://anncore:secret@127.0.0.1:1/optuna"], "cannot open the Optuna storage"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_makes_nothing(tiny_fashion_root, tmp_path, extra, message) -> None:
    status, out, err = run_cli(sweep_args(tiny_fashion_root, tmp_path, *extra))
    assert status == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "secret" not in err
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_champion_is_served_over_http(tiny_sweep) -> None:
    folder, data = tiny_sweep["folder"], tiny_sweep["data"]
    port = free_port()
    # `mlflow models serve` execs `uvicorn` through the shell: the environment's bin must be on PATH
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
                   "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    log = folder / "serve.log"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{REGISTERED_MODEL}@champion",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()[-2000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        image = data.test.x[:1].numpy().reshape(1, -1)
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": image.tolist()}, timeout=30)
        assert answer.status_code == 200, answer.text
        served = np.asarray(answer.json()["predictions"])
        mlflow.set_tracking_uri(environment["MLFLOW_TRACKING_URI"])
        local = np.asarray(mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@champion").predict(image))
        assert served.shape == (1, 10) and served.argmax() == local.argmax()
    finally:
        stop_process_group(server, timeout_s=20)


def embedded_spec(page: Path) -> dict:
    """The Vega-Lite spec that an Altair HTML page (``chart.save(..., "html")``) hands to vegaEmbed."""
    text = page.read_text()
    start = text.index("{", re.search(r"\b(?:const|var) spec = ", text).start())
    return json.JSONDecoder().raw_decode(text, start)[0]


def _layer_values(spec: dict, layer: dict) -> list[dict]:
    data = layer.get("data", {})
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def history_layers(spec: dict) -> tuple[list[tuple], list[tuple]]:
    """(number, state, accuracy) of the history chart's points; (number, best) of its line."""
    marks = {(layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]): layer
             for layer in spec["layer"]}
    points = [(row["number"], row["state"], row["accuracy"]) for row in _layer_values(spec, marks["point"])]
    best = [(row["number"], row["best"]) for row in _layer_values(spec, marks["line"])]
    return sorted(points), best


def panel_points(panel: dict, spec: dict) -> list[tuple]:
    """(number, state, accuracy) of one parameter panel's points."""
    return sorted((row["number"], row["state"], row["accuracy"]) for row in _layer_values(spec, panel))


def expected_points(table: pd.DataFrame) -> list[tuple]:
    """Each trial that reported an accuracy: its value when complete, else the last it reported."""
    rows = []
    for trial in table.itertuples():
        accuracy = trial.value if trial.state == "COMPLETE" else trial.last_val_acc
        if not pd.isna(accuracy):
            rows.append((trial.number, trial.state, accuracy))
    return sorted(rows)


def markdown_rows(markdown: str) -> tuple[list[str], list[list[str]]]:
    """The header and body cells of the first pipe table in ``markdown``."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    assert set(lines[1]) <= set("|:-"), lines[:2]
    return cells[0], cells[2:]


def test_the_report_section_is_computed_from_the_runs(tiny_sweep, tmp_path, monkeypatch) -> None:
    from reporting.sections import sweep as section
    from reporting.training_tables import percent

    folder = tiny_sweep["folder"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    study, parent = load_study(folder), parent_of(folder)
    table = pd.read_csv(_artifact(parent, "trials.csv", folder))
    states = [t.state.name for t in study.trials]
    pruning = section.pruning().data
    assert (f"Of {len(states)} trials, {states.count('COMPLETE')} completed, {states.count('PRUNED')} were pruned "
            f"and {states.count('FAIL')} failed.") in pruning
    ran = sum(len(t.intermediate_values) for t in study.trials)
    assert f"ran {ran} epochs, against {2 * len(states)} without pruning" in pruning
    assert "selection is made on validation" in section.selection().data

    # The best-trials table, row by row: the complete trials by validation accuracy (ties by number).
    header, rows = markdown_rows(section.best_trials().data)
    column = {name: header.index(name) for name in ("trial", "architecture", "validation accuracy", "run")}
    complete = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: (-t.value, t.number))
    assert complete and len(rows) == min(len(complete), section.BEST_SHOWN)
    runs = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}
    for row, trial in zip(rows, complete):
        assert row[column["trial"]] == str(trial.number)
        assert row[column["validation accuracy"]] == percent(trial.value)
        assert row[column["architecture"]] == runs[trial.number].data.params["architecture"]
        assert row[column["run"]] == f"`{runs[trial.number].info.run_id[:8]}`"

    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    champion = client.get_run(parent.data.tags["anncore.champion_run_id"])
    text = section.champion().data
    assert f"reached {percent(champion.data.metrics['final_test_acc'])} test accuracy" in text
    assert "there is no baseline run" in text  # this store has no baseline run

    # The charts the section shows: their marks are the trials of trials.csv.
    history = next(iter(section.history_chart())).chart.to_dict()
    points, best = history_layers(history)
    assert points == expected_points(table)
    ordered = table[table["state"] == "COMPLETE"].sort_values("number")
    assert best == list(zip(ordered["number"], ordered["value"].cummax()))
    parameters = next(iter(section.parameter_chart())).chart.to_dict()
    assert all(panel_points(panel, parameters) == expected_points(table) for panel in parameters["concat"])

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    assert "No results yet" in section.status().data and section.champion() is None
