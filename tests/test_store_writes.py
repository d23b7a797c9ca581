"""A store write is never cut in half by Ctrl-C or SIGTERM: the signal waits for the write to end."""

from __future__ import annotations

import os
import signal
import threading
import time

import mlflow
import pytest

from experiments.tracking import store


def test_a_signal_during_a_held_block_is_delivered_right_after_it():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with store.signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append("write")  # not interrupted: the handler has not run yet
        finished.append("after")  # never reached: the held SIGINT raises as the block ends
    assert finished == ["write"]


def test_sqlite_writes_finish_before_the_interrupt(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("writes")).info.run_id

    def write_interrupted_midway():
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came while the write was under way
        client.log_param(run_id, "written", "yes")

    with pytest.raises(KeyboardInterrupt):
        store.with_retry(write_interrupted_midway)
    assert client.get_run(run_id).data.params == {"written": "yes"}
    client.set_terminated(run_id, "KILLED")  # the store is not left locked
    assert client.get_run(run_id).info.status == "KILLED"


# --- issue 16: the windows in which an interrupt was lost, mis-recorded or kept waiting -------------

@pytest.fixture
def sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # put back after the test by conftest's _restore_tracking_uri
    return mlflow.MlflowClient(tracking_uri=uri)


def interrupted_during(function):
    """``function`` as if Ctrl-C came while it ran (the signal reaches this process mid-call)."""

    def wrapper(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return function(*args, **kwargs)

    return wrapper


def test_ctrl_c_during_start_run_ends_the_new_run_killed(sqlite_store, monkeypatch):
    """The held signal was raised from with_retry before tracked_run's `try`: the run was never
    ended by us, and MLflow's exit hook then marked it FINISHED."""
    from experiments.settings import Invocation, RunSettings
    from experiments.tracking import runs

    monkeypatch.setattr(mlflow, "start_run", interrupted_during(mlflow.start_run))
    with pytest.raises(KeyboardInterrupt):
        with runs.tracked_run(RunSettings(Invocation(device="cpu")), "writes"):
            pytest.fail("the body must not run once Ctrl-C came")
    [run] = sqlite_store.search_runs([sqlite_store.get_experiment_by_name("anncore-writes").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["anncore.error"] == "KeyboardInterrupt"
    assert mlflow.active_run() is None  # nothing left for the exit hook to end


def test_ctrl_c_during_a_metrics_write_does_not_write_the_epochs_twice(sqlite_store, monkeypatch):
    from experiments.tracking import runs

    run_id = sqlite_store.create_run(sqlite_store.create_experiment("flush")).info.run_id
    with mlflow.start_run(run_id=run_id):
        logger = runs.EpochMetricsLogger(flush_every_s=3600)
        logger(1, {"epoch": 1, "train_loss": 0.5}, model=None)
        monkeypatch.setattr(mlflow.MlflowClient, "log_batch", interrupted_during(mlflow.MlflowClient.log_batch))
        with pytest.raises(KeyboardInterrupt):
            logger.flush()
        monkeypatch.undo()
        assert logger._pending == []  # written, so not pending: the final flush does not repeat it
        logger.flush(final={"final_train_loss": 0.5})
    assert [m.step for m in sqlite_store.get_metric_history(run_id, "train_loss")] == [1]


class Exits(list):
    """The calls of store.exit_at_once, with an event set at the first (made by the counting thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.made = threading.Event()

    def append(self, signum: int) -> None:
        super().append(signum)
        self.made.set()


@pytest.fixture
def exits(monkeypatch) -> Exits:
    """store.exit_at_once, recorded instead of ending pytest."""
    calls = Exits()
    monkeypatch.setattr(store, "exit_at_once", calls.append)
    return calls


# How long the counting thread may take to be scheduled on a loaded machine; only a hang waits it out.
THREAD_TIMEOUT_S = 60


def test_after_the_first_signal_nothing_is_held_and_a_second_exits_at_once(exits):
    from experiments.suite import Terminated, sigterm_raises

    with sigterm_raises():
        with pytest.raises(Terminated):
            with store.signals_held():
                os.kill(os.getpid(), signal.SIGTERM)  # held, then raised as the write ends
        assert store.Interrupts.stopping and exits == []
        with pytest.raises(KeyboardInterrupt):
            with store.signals_held():  # a write while the runs are ended: holds nothing now
                os.kill(os.getpid(), signal.SIGINT)
                # Not a timing bound: a signal this thread sends itself reaches the Python handler
                # at the next bytecode, which interrupts the sleep; only a held signal sleeps it out.
                time.sleep(2)
                pytest.fail("the second signal was held until the write ended")
        assert exits.made.wait(THREAD_TIMEOUT_S) and exits == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # all put back
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert not store.Interrupts.armed and not store.Interrupts.stopping and signal.set_wakeup_fd(-1) == -1


def test_a_second_ctrl_c_while_the_main_thread_waits_in_c_exits_at_once(exits):
    """Two Ctrl-Cs during one blocking call reach Python's handler once, after the call; the
    wakeup-fd counter sees both as they come."""
    from experiments.suite import sigterm_raises

    with sigterm_raises():
        with pytest.raises(KeyboardInterrupt):
            with store.signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)  # two bytes on the wakeup fd: counted however late
                assert exits.made.wait(THREAD_TIMEOUT_S) and exits == [signal.SIGINT]  # while the write still runs
    assert exits == [signal.SIGINT]


def test_a_handler_raising_while_signals_are_put_back_leaves_no_handler_replaced(exits):
    """signal.signal() runs pending handlers first; one that raises used to leave `record` installed."""
    from experiments.suite import Terminated, sigterm_raises

    with sigterm_raises():
        with pytest.raises(Terminated):
            with store.signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):  # the first SIGINT after it is delivered, not swallowed
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)


def test_sigterm_before_any_run_is_status_143_not_a_kill(tmp_path, monkeypatch):
    from experiments import suite
    from tests.mlflow_processes import run_cli

    def preflight(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

    monkeypatch.setattr(suite, "preflight", preflight)
    status, out, err = run_cli(["run", "simple_ann", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert status == 143 and err == "interrupted\n"


# --- with_retry ---------------------------------------------------------------------------------------

def test_with_retry_waits_out_a_lock_with_growing_pauses(sqlite_store, monkeypatch):
    import sqlite3

    pauses = []
    monkeypatch.setattr(store.time, "sleep", pauses.append)
    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return "written"

    assert store.with_retry(locked_twice) == "written" and len(calls) == 3
    assert 0.1 <= pauses[0] < 0.2 and 0.2 <= pauses[1] < 0.4  # 0.1 s * 2**attempt * (1 + jitter)


def test_with_retry_gives_up_after_eight_attempts_with_a_clear_error(sqlite_store, monkeypatch):
    from mlflow.exceptions import MlflowException

    pauses = []
    monkeypatch.setattr(store.time, "sleep", pauses.append)
    calls = []

    def always_locked():
        calls.append(1)
        raise MlflowException("(sqlite3.OperationalError) database is locked\n[SQL: UPDATE runs ...]")

    with pytest.raises(store.StoreLockedError) as raised:
        store.with_retry(always_locked)
    assert len(calls) == 8 and len(pauses) == 7
    assert all(0.1 * 2**k <= pause < 0.2 * 2**k for k, pause in enumerate(pauses))
    message = str(raised.value)
    assert message.startswith("the MLflow store stayed locked through 8 attempts ((sqlite3.OperationalError) "
                              "database is locked); another process is writing to it")
    assert "SQL:" not in message and isinstance(raised.value.__cause__, MlflowException)


@pytest.mark.parametrize("error", [ValueError("bad value"), RuntimeError("no such table: runs"),
                                   OSError("disk I/O error")], ids=["ValueError", "no-such-table", "disk-io"])
def test_with_retry_does_not_retry_other_errors(error, sqlite_store, monkeypatch):
    monkeypatch.setattr(store.time, "sleep", lambda s: pytest.fail("slept before re-raising"))
    calls = []

    def fails():
        calls.append(1)
        raise error

    with pytest.raises(type(error)) as raised:
        store.with_retry(fails)
    assert raised.value is error and calls == [1]


def test_with_retry_does_not_wait_for_a_lock_while_runs_are_ended_killed(sqlite_store, monkeypatch):
    import sqlite3

    monkeypatch.setattr(store.Interrupts, "stopping", True)
    calls = []

    def locked():
        calls.append(1)
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        store.with_retry(locked)
    assert calls == [1]


# --- two processes logging the same dataset to one experiment at once --------------------------------

@pytest.fixture
def another_process_inserts_the_dataset_first(tmp_path):
    """Just before MLflow inserts a new dataset row, another connection commits the same one.

    That is the window two suites on one store hit (CI, two ``run all`` on ./mlruns): both looked
    for the dataset, neither found it, both insert it.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    inserted = []

    def insert_first(conn, cursor, statement, parameters, context, executemany):
        if inserted or not statement.lstrip().upper().startswith("INSERT INTO DATASETS"):
            return
        row = list(parameters[0] if executemany or isinstance(parameters[0], (list, tuple)) else parameters)
        row[0] = "0" * 32  # the other process's dataset_uuid
        other = sqlite3.connect(tmp_path / "mlflow.db", timeout=5)
        with other:
            other.execute(statement, row)
        other.close()
        inserted.append(row[0])

    event.listen(Engine, "before_cursor_execute", insert_first)
    yield inserted
    event.remove(Engine, "before_cursor_execute", insert_first)


def test_a_dataset_another_process_inserted_first_is_linked_not_lost(sqlite_store, another_process_inserts_the_dataset_first):
    import torch

    from anncore.data import TensorData
    from experiments.tracking import datasets

    split = TensorData(torch.zeros(3, 1, 28, 28), torch.tensor([0, 1, 2]), num_classes=10)
    data = datasets.FashionMNIST(split, split, "ab" * 32, "data")
    run_id = sqlite_store.create_run(sqlite_store.create_experiment("race")).info.run_id
    datasets.log_input_to(run_id, datasets.dataset_input(data))
    assert another_process_inserts_the_dataset_first == ["0" * 32]  # the race really happened
    [logged] = sqlite_store.get_run(run_id).inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("FashionMNIST", ("ab" * 32)[:36])
    assert logged.tags[0].value == "training"
    with mlflow.start_run(run_id=run_id):  # the fluent path, as the studies log it: the row is found now
        datasets.log_input(data)
    assert len(sqlite_store.get_run(run_id).inputs.dataset_inputs) == 1


def test_other_integrity_errors_are_not_retried_as_a_dataset_race():
    assert store.is_dataset_insert_race(Exception(
        'duplicate key value violates unique constraint "dataset_pk"\nDETAIL:  Key (experiment_id, name, digest)'))
    assert not store.is_dataset_insert_race(Exception("UNIQUE constraint failed: experiments.name"))
    assert not store.is_dataset_insert_race(Exception("database is locked"))
