"""experiments.search.storage: opening a new Optuna storage from several processes at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc

from experiments.search import held_storage, storage
from experiments.settings import UserInputError


def _open_and_count(url: str, barrier, results) -> None:
    barrier.wait()  # every process asks for the new database's tables at the same moment
    try:
        opened = storage.open_storage(url)
        results.put(("ok", len(optuna.get_all_study_summaries(opened))))
    except Exception as error:  # noqa: BLE001 - reported to the test
        results.put(("error", f"{type(error).__name__}: {error}"))


def test_six_processes_opening_one_new_sqlite_storage_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_open_and_count, args=(url, barrier, results)) for _ in range(6)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert outcomes == [("ok", 0)] * 6, outcomes


def _failing_once(message: str, calls: list[str]):
    class LosesTheFirstRace(held_storage.HeldRDBStorage):  # a subclass: optuna's isinstance checks still hold
        def __init__(self, url, **kwargs):
            calls.append(url)
            if len(calls) == 1:
                raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception(message))
            super().__init__(url, **kwargs)

    return LosesTheFirstRace


@pytest.mark.parametrize("message", [
    "UNIQUE constraint failed: alembic_version.version_num",  # SQLite's loser
    'relation "alembic_version" already exists',  # PostgreSQL's (DuplicateTable)
])
def test_a_table_creation_race_lost_is_opened_again(tmp_path: Path, monkeypatch, message: str) -> None:
    calls: list[str] = []
    monkeypatch.setattr(held_storage, "HeldRDBStorage", _failing_once(message, calls))
    opened = storage.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(calls) == 2 and optuna.get_all_study_summaries(opened) == []


def test_other_errors_are_not_retried_and_name_the_cause(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []

    def refused(url, **kwargs):
        calls.append(url)
        raise sqlalchemy.exc.OperationalError("connect", {}, Exception('password authentication failed for user "x"'))

    monkeypatch.setattr(held_storage, "HeldRDBStorage", refused)
    with pytest.raises(UserInputError, match="password was refused or missing"):
        storage.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(calls) == 1


def test_the_race_hint_names_the_sqlite_collision_too() -> None:
    error = sqlalchemy.exc.IntegrityError("x", {}, Exception("UNIQUE constraint failed: alembic_version.version_num"))
    assert "at the same time" in storage.open_failure_hint(error)
