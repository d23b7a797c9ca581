"""The search with ``--trials-per-batch K`` > 1 on the CPU: trials of one shape train together as one
stacked model, yet each is its own Optuna trial and its own MLflow child run, with its own epochs,
learning rate and dropout; the pruner decides per member per epoch; a member whose loss stops being
finite fails alone; each member learns exactly what it would alone; the runs are written in bulk;
``rerun`` of the parent keeps K; bad K values are refused. Tiny data, ``--quick``, a few trials."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest

from experiments.search import batching, stacked_trials, workers
from experiments.search.split import validation_split
from experiments.settings import SWEEP_OPTIONS_TAG
from experiments.tracking import datasets, liveness
from tests.mlflow_processes import run_cli
from experiments.search.storage import GRACE_PERIOD_S
from tests.test_sweep import (_artifact, _cli, _wait_for_running_trial, load_study, parent_of, quick_settings, sweep_args,
                              trial_runs)

EPOCHS = 3
PER_EPOCH = {"train_loss", "train_acc", "val_loss", "val_acc", "epoch_time_s", "samples_per_sec", "eval_time_s"}
FINALS = {"final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc", "train_time_s", "epochs_run"}
DIVERGING_TRIAL = 1  # drawn a learning rate that makes its loss overflow
PRUNED_AT = 2


class _OddTrialsPruner(optuna.pruners.BasePruner):
    """Prunes every odd-numbered trial at epoch PRUNED_AT: the test knows who leaves the stack, and when."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1 and trial.last_step == PRUNED_AT


def _suggest_diverging(real):
    def suggest(trial):
        params = real(trial)
        if trial.number == DIVERGING_TRIAL:
            params["learning_rate"] = 1e38  # Adam's first step moves every weight by about this much: logits overflow
        return params

    return suggest


class _Calls:
    """Counts the MlflowClient calls made for each run id (the first argument after the client)."""

    NAMES = ("create_run", "log_batch", "log_inputs", "log_artifact", "set_tag", "set_terminated", "log_param", "log_metric")

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        for name in self.NAMES:
            patch.setattr(mlflow.MlflowClient, name, self._counted(name, getattr(mlflow.MlflowClient, name)))

    def _counted(self, name, real):
        def call(client, *args, **kwargs):
            result = real(client, *args, **kwargs)
            key = result.info.run_id if name == "create_run" else (args[0] if args else kwargs.get("run_id"))
            with self.lock:
                self.counts[(name, key)] = self.counts.get((name, key), 0) + 1
            return result

        return call

    def of(self, run_id: str) -> dict[str, int]:
        return {name: n for (name, key), n in self.counts.items() if key == run_id}


@pytest.fixture(scope="module")
def stacked_sweep(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``run sweep --quick --trials 6 --epochs 3 --trials-per-batch 4``: groups of 4 and 2; odd trials pruned
    at epoch 2 (the pruner is replaced so the test knows), trial 1 drawn a diverging learning rate."""
    folder = tmp_path_factory.mktemp("stacked")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workers, "make_pruner", _OddTrialsPruner)
        patch.setattr(stacked_trials, "suggest", _suggest_diverging(stacked_trials.suggest))
        calls = _Calls(patch)
        status, out, err = run_cli(sweep_args(tiny_fashion_root, folder, "--trials", "6", "--epochs", str(EPOCHS),
                                              "--trials-per-batch", "4"))
    assert status == 0, err
    return {"folder": folder, "out": out, "err": err, "calls": calls}


def _metric_steps(folder: Path, run_id: str, key: str) -> dict[int, float]:
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_every_member_is_its_own_trial_and_finished_run(stacked_sweep) -> None:
    folder = stacked_sweep["folder"]
    study = load_study(folder)
    runs = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}
    assert sorted(runs) == [t.number for t in study.trials] == list(range(6))
    parent = parent_of(folder)
    expected = {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "PRUNED", 4: "COMPLETE", 5: "PRUNED"}
    assert {t.number: t.state.name for t in study.trials} == expected
    for trial in study.trials:
        run = runs[trial.number]
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["anncore.trial_state"] == trial.state.name
        assert run.info.status == ("FAILED" if trial.number == DIVERGING_TRIAL else "FINISHED")
        for key in ("anncore.host", "anncore.pid", "anncore.process_start", "anncore.heartbeat"):
            assert run.data.tags[key], key
        if trial.state.name == "FAIL":
            continue
        # its own per-epoch series, step = epoch, equal to what its trial reported to Optuna
        assert set(run.data.metrics) == PER_EPOCH | FINALS
        epochs = len(trial.intermediate_values)
        for key in PER_EPOCH:
            assert sorted(_metric_steps(folder, run.info.run_id, key)) == list(range(1, epochs + 1)), key
        assert _metric_steps(folder, run.info.run_id, "val_acc") == pytest.approx(trial.intermediate_values)
        assert run.data.metrics["epochs_run"] == epochs
        history = pd.read_csv(_artifact(run, "history.csv", folder))
        assert history["epoch"].tolist() == list(range(1, epochs + 1))
        assert history["val_acc"].tolist() == pytest.approx([trial.intermediate_values[e] for e in history["epoch"]])
        if trial.state.name == "COMPLETE":
            assert run.data.metrics["final_val_acc"] == pytest.approx(trial.value, abs=1e-12)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_per_batch"] == 4
    assert "and 4 trials per batch" in stacked_sweep["out"]


def test_a_group_shares_its_shape_and_each_member_draws_its_own_rates(stacked_sweep) -> None:
    folder = stacked_sweep["folder"]
    study = load_study(folder)
    runs = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}
    groups = {}
    for number, run in runs.items():
        groups.setdefault(int(run.data.tags["anncore.stack_group"]), []).append(number)
        assert run.data.tags["anncore.stack_size"] == str(4 if number < 4 else 2)
    assert {g: sorted(m) for g, m in groups.items()} == {0: [0, 1, 2, 3], 4: [4, 5]}
    for members in groups.values():
        trials = [study.trials[n] for n in members]
        shapes = [stacked_trials.shape_params(t.params) for t in trials]
        assert all(shape == shapes[0] for shape in shapes)  # the sampler saw (and fixed) the shape
        assert {runs[n].data.params["architecture"] for n in members} == {trials[0].user_attrs["architecture"]}
        assert len({runs[n].data.params["batch_size"] for n in members}) == 1
        # each member its own learning rate and dropout, drawn by TPE, logged on its own run
        assert len({t.params["learning_rate"] for t in trials}) == len(trials)
        assert len({t.params["dropout"] for t in trials}) == len(trials)
        for trial in trials:
            assert set(trial.params) >= {"n_hidden_layers", "activation", "dropout", "learning_rate", "batch_size"}
            assert float(runs[trial.number].data.params["dropout_rate"]) == trial.params["dropout"]
            if trial.number != DIVERGING_TRIAL:
                assert float(runs[trial.number].data.params["learning_rate"]) == trial.params["learning_rate"]


def test_a_pruned_member_leaves_the_stack_at_its_epoch(stacked_sweep) -> None:
    folder = stacked_sweep["folder"]
    study = load_study(folder)
    runs = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}
    for pruned, others in ((3, [0, 2]), (5, [4])):
        trial = study.trials[pruned]
        assert sorted(trial.intermediate_values) == list(range(1, PRUNED_AT + 1))
        run = runs[pruned]
        assert max(_metric_steps(folder, run.info.run_id, "train_loss")) == PRUNED_AT
        assert run.data.metrics["epochs_run"] == PRUNED_AT
        for other in others:  # the rest of its stack went on to the last epoch, and ended later
            assert sorted(study.trials[other].intermediate_values) == list(range(1, EPOCHS + 1))
            assert runs[other].info.end_time > run.info.end_time


def test_a_member_whose_loss_overflows_fails_alone(stacked_sweep) -> None:
    folder = stacked_sweep["folder"]
    run = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}[DIVERGING_TRIAL]
    assert run.info.status == "FAILED" and run.data.tags["anncore.trial_state"] == "FAIL"
    assert run.data.tags["anncore.error"].startswith("NonFiniteLossError: ")
    assert "NonFiniteLossError" in _artifact(run, "error.txt", folder).read_text()
    assert float(run.data.params["learning_rate"]) == 1e38


def test_the_members_runs_are_written_in_bulk(stacked_sweep) -> None:
    """Per member run: one creation (all its tags), one dataset input, one artifact, one end, and its params
    and metrics in at most one log_batch per epoch plus one at its end; never a call per param, metric or tag."""
    calls = stacked_sweep["calls"]
    study = load_study(stacked_sweep["folder"])
    for trial in study.trials:
        counts = calls.of(trial.user_attrs["mlflow_run_id"])
        assert counts.get("create_run") == 1 and counts.get("log_inputs") == 1 and counts.get("set_terminated") == 1
        assert counts.get("log_artifact") == 1  # history.csv; error.txt for the failed one
        assert 1 <= counts["log_batch"] <= len(trial.intermediate_values) + 1, counts
        assert not {"set_tag", "log_param", "log_metric"} & set(counts), counts  # heartbeats ride on the writes


def test_rerun_of_the_parent_keeps_trials_per_batch(stacked_sweep, tiny_fashion_root) -> None:
    folder = stacked_sweep["folder"]
    parent = parent_of(folder)
    assert json.loads(parent.data.tags[SWEEP_OPTIONS_TAG])["trials_per_batch"] == 4
    status, out, err = run_cli(["rerun", parent.info.run_id, "--no-progress", "--data-dir", str(tiny_fashion_root),
                                "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"])
    assert status == 0, err
    new = [r for r in trial_runs(folder) if r.data.tags.get("anncore.rerun_of") == parent.info.run_id]
    assert sorted(int(r.data.tags["anncore.trial_number"]) for r in new) == list(range(6, 12))
    groups = sorted({(r.data.tags["anncore.stack_group"], r.data.tags["anncore.stack_size"]) for r in new})
    assert groups == [("10", "2"), ("6", "4")]
    parent = parent_of(folder)
    assert parent.data.metrics["trials_per_batch"] == 4
    assert json.loads(parent.data.tags[SWEEP_OPTIONS_TAG])["trials_per_batch"] == 4


@pytest.fixture(scope="module")
def dropout_off_sweep(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A stacked sweep (K = 3, 3 trials) with dropout drawn from [0, 0], then one trial alone in another study."""
    from experiments.search import space

    folder = tmp_path_factory.mktemp("stacked-no-dropout")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(space, "DROPOUT_RANGE", (0.0, 0.0))
        status, _, err = run_cli(sweep_args(tiny_fashion_root, folder, "--trials", "3", "--epochs", str(EPOCHS),
                                            "--trials-per-batch", "3"))
        assert status == 0, err
        status, _, err = run_cli(sweep_args(tiny_fashion_root, folder, "--trials", "1", "--epochs", str(EPOCHS),
                                            "--study-name", "alone"))
        assert status == 0, err
    return {"folder": folder}


def test_each_member_learns_what_it_would_alone(dropout_off_sweep, tiny_fashion_root) -> None:
    """The stacked-vs-separate equivalence through the whole search: each member's logged epochs are what
    anncore's trainer gives that configuration trained alone (same seed, same split, dropout off)."""
    from anncore.trainer import set_seed, train
    from experiments.search.space import model_config

    folder = dropout_off_sweep["folder"]
    settings = quick_settings(tiny_fashion_root)
    data = datasets.load(settings)
    split = validation_split(data.train, settings.seed)
    study = load_study(folder)
    runs = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(folder)}
    assert len({json.dumps(stacked_trials.shape_params(t.params)) for t in study.trials}) == 1
    assert len({t.params["learning_rate"] for t in study.trials}) == 3
    for trial in study.trials:
        params = trial.params
        config = settings.train_config(epochs=EPOCHS, batch_size=params["batch_size"], learning_rate=params["learning_rate"],
                                       progress=False)
        set_seed(config.seed)
        alone = train(model_config(params).build(), split.train, split.validation, config).history
        run_id = runs[trial.number].info.run_id
        for logged, computed in (("train_loss", "train_loss"), ("train_acc", "train_acc"), ("val_loss", "test_loss"),
                                 ("val_acc", "test_acc")):
            steps = _metric_steps(folder, run_id, logged)
            assert list(steps.values()) == pytest.approx(alone[computed].tolist()[:len(steps)], rel=1e-5, abs=1e-6), logged


def test_a_member_run_has_the_layout_of_a_trial_trained_alone(dropout_off_sweep) -> None:
    folder = dropout_off_sweep["folder"]
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    [alone] = trial_runs(folder, "alone")
    member = next(r for r in trial_runs(folder) if r.data.tags["anncore.trial_state"] == "COMPLETE")
    assert sorted(member.data.params) == sorted(alone.data.params)
    assert sorted(member.data.metrics) == sorted(alone.data.metrics)
    assert [a.path for a in client.list_artifacts(member.info.run_id)] == [a.path for a in client.list_artifacts(alone.info.run_id)]
    assert len(member.inputs.dataset_inputs) == len(alone.inputs.dataset_inputs) == 1
    assert "anncore.stack_group" not in alone.data.tags  # K = 1: the trial trains alone, as always
    assert {k for k in alone.data.tags if k.startswith("anncore.")} | {"anncore.stack_group", "anncore.stack_size"} == \
        {k for k in member.data.tags if k.startswith("anncore.")}
    assert parent_of(folder, "alone").data.metrics["trials_per_batch"] == 1


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "argument --trials-per-batch: '0' is out of range; accepted: a number of trials trained together from 1 to 1024"),
        ("1025", "argument --trials-per-batch: '1025' is out of range"),
        ("four", "argument --trials-per-batch: 'four' is not an integer"),
    ],
)
def test_bad_trials_per_batch_is_one_line_exit_2(tiny_fashion_root, tmp_path, value, message) -> None:
    status, _, err = run_cli(sweep_args(tiny_fashion_root, tmp_path, "--trials-per-batch", value))
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


def test_the_default_trials_per_batch() -> None:
    assert batching.trials_per_batch(None, "cpu") == 1  # the CPU keeps one trial at a time
    assert batching.trials_per_batch(16, "cpu") == 16
    biggest = batching.largest_member_bytes()
    assert biggest == batching.member_bytes([784, 1024, 1024, 1024, 1024, 10], 256)
    # 784-1024x4-10: 3.96 M weights x 4 copies x 4 bytes, plus activations of the larger of 3 x 256 and 1024 rows
    weights = 784 * 1024 + 3 * 1024 * 1024 + 1024 * 10 + 4 * 1024 + 10
    assert biggest == 4 * (4 * weights + 1024 * (4 * 1024 + 10))
    assert batching.fitting_trials_per_batch(140 * 2**30) == batching.CUDA_DEFAULT_TRIALS_PER_BATCH  # an H200: capped
    assert batching.fitting_trials_per_batch(10 * biggest) == 5  # half the free memory
    assert batching.fitting_trials_per_batch(10 * biggest, workers=5) == 1  # shared by the workers
    assert batching.fitting_trials_per_batch(0) == 1


def test_one_heartbeat_thread_beats_until_the_block_ends() -> None:
    beats: list[float] = []
    before = threading.active_count()
    with liveness.heartbeat_thread(lambda: beats.append(time.monotonic()), 0.02):
        assert threading.active_count() == before + 1
        time.sleep(0.3)
    seen = len(beats)
    time.sleep(0.1)
    assert seen >= 3 and len(beats) == seen and threading.active_count() == before



def test_a_killed_stacked_worker_leaves_its_trials_failed(tiny_fashion_root, tmp_path) -> None:
    """The stack's one heartbeat thread beats for every member's trial, so a killed worker's whole group is
    found stale by the next invocation: every member FAIL, every run KILLED, and the study goes on."""
    args = ["--trials", "2", "--epochs", "12", "--study-name", "killed", "--trials-per-batch", "2"]
    worker = _cli(*sweep_args(tiny_fashion_root, tmp_path, *args), start_new_session=True)
    try:
        _wait_for_running_trial(tmp_path)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate()
    time.sleep(GRACE_PERIOD_S + 1)
    resumed = _cli(*sweep_args(tiny_fashion_root, tmp_path, "--trials", "1", "--epochs", "12", "--study-name", "killed",
                               "--trials-per-batch", "2"))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    trials = load_study(tmp_path, "killed").trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "FAIL"), (1, "FAIL"), (2, "COMPLETE")], err
    runs = {int(r.data.tags["anncore.trial_number"]): r for r in trial_runs(tmp_path, "killed")}
    for number in (0, 1):
        assert runs[number].info.status == "KILLED" and runs[number].data.tags["anncore.trial_state"] == "FAIL"
    assert runs[2].info.status == "FINISHED" and runs[2].data.tags["anncore.stack_size"] == "1"


def test_the_runs_writer_sends_each_run_in_calls_within_mlflows_limits(tmp_path) -> None:
    """2,500 metrics and 150 params of one run go out in three log_batch calls (MLflow takes at most 1,000
    metrics and 100 params per call), and only once written are they dropped; another run's wait for it."""
    from experiments.tracking import bulk_runs, store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store.connect(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("anncore-bulk")
    first, second = bulk_runs.create_runs(experiment, [("a", {"anncore.role": "child"}), ("b", {})])
    writer = bulk_runs.RunsWriter(flush_every_s=3600)
    writer.add(first, params={f"p{i}": i for i in range(150)}, metrics={f"m{i}": i for i in range(500)}, step=1)
    for step in range(2, 6):
        writer.add(first, metrics={f"m{i}": i * step for i in range(500)}, step=step)
    writer.add(second, metrics={"loss": 0.5}, step=1)
    assert not writer.due()
    writer.flush([first])
    run = client.get_run(first)
    assert len(run.data.params) == 150 and len(run.data.metrics) == 500
    assert [m.step for m in client.get_metric_history(first, "m7")] == [1, 2, 3, 4, 5]
    assert run.data.tags["anncore.heartbeat"] and run.data.tags["anncore.role"] == "child"
    assert client.get_run(second).data.metrics == {}  # not written yet
    writer.flush()
    assert client.get_run(second).data.metrics == {"loss": 0.5}
    bulk_runs.end_runs({first: "FINISHED", second: "KILLED"})
    assert [client.get_run(r).info.status for r in (first, second)] == ["FINISHED", "KILLED"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_the_stack_heartbeat_beats_for_live_trials_and_quiet_runs_only(tmp_path) -> None:
    """One beat: an Optuna heartbeat for every live member's trial (so a dead worker's trials become stale) and
    the MLflow heartbeat tag of the live runs not written for RUN_HEARTBEAT_EVERY_S, none for the others."""
    from experiments.search import member_runs, storage
    from experiments.tracking import bulk_runs, store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store.connect(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("anncore-beat")
    opened = storage.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=opened, study_name="beat")
    members = [member_runs.Member(study.ask(), {}) for _ in range(3)]
    ids = bulk_runs.create_runs(experiment, [(f"m{i}", {liveness.HEARTBEAT_TAG: "1"}) for i in range(3)])
    writer = bulk_runs.RunsWriter()
    for member, run_id in zip(members, ids):
        member.run_id = run_id
        writer.add(run_id)
    writer.last_run_write[ids[0]] -= stacked_trials.RUN_HEARTBEAT_EVERY_S + 1  # quiet for too long
    writer.last_run_write[ids[2]] -= stacked_trials.RUN_HEARTBEAT_EVERY_S + 1
    members[2].done = True  # left the stack
    stacked_trials._Heartbeat(opened, members, writer)()
    beats = [client.get_run(run_id).data.tags[liveness.HEARTBEAT_TAG] for run_id in ids]
    assert beats[0] != "1" and beats[1] == "1" and beats[2] == "1"
    time.sleep(GRACE_PERIOD_S + 1)
    optuna.storages.fail_stale_trials(study)  # as the next worker does: only trials with a heartbeat can be stale
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "FAIL", "RUNNING"]


def test_sigterm_during_a_stack_ends_every_member_killed_and_its_trials_failed(tiny_fashion_root, tmp_path) -> None:
    """Stopped while its stack trains, the sweep exits without a traceback, and nothing is left RUNNING: every
    member's run KILLED with the epochs it logged, every member's trial FAIL, the parent KILLED."""
    args = ["--trials", "2", "--epochs", "400", "--study-name", "stopped", "--trials-per-batch", "2"]
    worker = _cli(*sweep_args(tiny_fashion_root, tmp_path, *args), start_new_session=True)
    try:
        _wait_for_running_trial(tmp_path)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
    assert worker.returncode != 0 and "Traceback" not in err, err[-3000:]
    trials = load_study(tmp_path, "stopped").trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"], err[-3000:]
    runs = trial_runs(tmp_path, "stopped")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"KILLED"}, err[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")]
        assert steps and steps == list(range(1, len(steps) + 1))  # the epochs up to the signal, in order
    assert parent_of(tmp_path, "stopped").info.status == "KILLED"
