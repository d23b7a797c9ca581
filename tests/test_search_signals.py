"""An interrupt during an Optuna write of the search lands after the write, never inside its transaction.

A SQLite transaction cut by Ctrl-C or SIGTERM leaves its connection holding the database's lock:
every later write, the trials' FAIL included, then waits out the busy timeout (60 s) and is lost.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from experiments.search import stacked_trials
from experiments.search.storage import open_storage
from experiments.search.trial import _PruningReporter

# study.ask on a storage with a heartbeat: Optuna says that is meant for study.optimize (ask_group hides it too).
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")


@pytest.fixture
def signal_inside_the_insert():
    """SIGINT to this process as the INSERT of an intermediate value goes to SQLite, inside its transaction."""
    sent = []

    def interrupt(conn, cursor, statement, parameters, context, executemany):
        if not sent and statement.lstrip().upper().startswith("INSERT INTO TRIAL_INTERMEDIATE_VALUES"):
            sent.append(statement)
            os.kill(os.getpid(), signal.SIGINT)

    event.listen(Engine, "before_cursor_execute", interrupt)
    yield sent
    event.remove(Engine, "before_cursor_execute", interrupt)


def _study(folder: Path) -> tuple[optuna.Study, str]:
    """A study in the storage the search opens (``open_storage``)."""
    url = f"sqlite:///{folder / 'optuna.db'}"
    return optuna.create_study(storage=open_storage(url), study_name="held", direction="maximize"), url


def _another_process_can_write(url: str, number: int) -> optuna.trial.FrozenTrial:
    """Tell trial ``number`` FAIL through a new connection that waits at most 2 s for the lock."""
    other = optuna.load_study(study_name="held", storage=optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": 2}}))
    other.tell(number, state=optuna.trial.TrialState.FAIL)
    return other.trials[number]


def test_an_interrupt_during_a_trials_report_lands_after_it(tmp_path, signal_inside_the_insert):
    study, url = _study(tmp_path)
    trial = study.ask()
    with pytest.raises(KeyboardInterrupt):
        _PruningReporter(trial)(1, {"val_acc": 0.5}, None)
    assert signal_inside_the_insert  # the signal really came inside the write
    frozen = _another_process_can_write(url, trial.number)
    assert frozen.intermediate_values == {1: 0.5} and frozen.state.name == "FAIL"


def test_an_interrupt_during_a_stacks_report_lands_after_it(tmp_path, signal_inside_the_insert):
    from experiments.tracking import bulk_runs

    study, url = _study(tmp_path)
    members = [stacked_trials.Member(study.ask(), {}) for _ in range(2)]
    reporter = stacked_trials._EpochReporter(study, members, bulk_runs.RunsWriter())
    with pytest.raises(KeyboardInterrupt):
        reporter(1, {0: {"epoch": 1, "test_acc": 0.5}, 1: {"epoch": 1, "test_acc": 0.6}})
    assert signal_inside_the_insert
    frozen = _another_process_can_write(url, members[0].trial.number)
    assert frozen.intermediate_values == {1: 0.5} and frozen.state.name == "FAIL"
