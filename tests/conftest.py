"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.idx_files import write_fashion_mnist

pytest_plugins = ("pytester",)  # tests/test_worker_groups.py collects a session of its own


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for the workers, and skip the tests marked ``cuda`` on a machine without CUDA
    (``scripts/gpu_check.sh`` runs them on one).

    First among the hooks: pytest-xdist's own reads the ``xdist_group`` markers in this same hook
    (it appends the group to each test's id), and ran before this one, so the groups were ignored
    and each worker built the session's suite and report, and modules' servers, for itself."""
    import torch

    _group_for_workers(items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


# The session fixtures below that run the suite or execute the report. Under pytest-xdist
# (scripts/run_tests.sh runs ``-n 2 --dist loadgroup``) each worker would build its own copy, so
# every module that uses one of them joins one group and runs on one worker.
SESSION_RUNS = frozenset({"suite_0_1", "full_store", "full_report", "full_report_ru"})


def _group_for_workers(items: list[pytest.Item]) -> None:
    """Give each test an ``xdist_group``: its module's name, or ``session-runs`` for every module that
    uses a fixture of ``SESSION_RUNS``. A module stays on one worker, so its module-scoped fixtures
    (a PostgreSQL cluster, a tracking server, a sweep) are built once, as in a plain run."""
    sharing = {item.path for item in items if SESSION_RUNS & set(getattr(item, "fixturenames", ()))}
    for item in items:
        group = "session-runs" if item.path in sharing else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def tiny_fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding a tiny valid FashionMNIST (600 train, 200 test) in torchvision's layout."""
    return write_fashion_mnist(tmp_path_factory.mktemp("fashion"))


@pytest.fixture(autouse=True)
def _restore_tracking_uri():
    """Undo what a test's in-process suite or ``mlflow.set_tracking_uri`` does to the tracking URI.

    Setting MLflow's tracking URI also sets ``$MLFLOW_TRACKING_URI``, which would otherwise leak
    into every later test of the session.
    """
    from experiments.tracking.store import restored_tracking_uri

    with restored_tracking_uri():
        yield


@pytest.fixture(scope="session")
def full_store(suite_0_1: dict, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every experiment (the session's ``run all --quick --seeds 0,1``, copied as it was right after
    the run; the runs' artifacts stay where that run wrote them) and the benchmark, ``--quick`` on
    the tiny data, in one store for the session."""
    from tests.benchmark_runs import log_quick_benchmark

    assert suite_0_1["status"] == 0, suite_0_1["err"][-3000:]
    store = tmp_path_factory.mktemp("full-store")
    for database in suite_0_1["pristine"].iterdir():
        copy_sqlite(database, store / database.name)
    return log_quick_benchmark(suite_0_1["data"], store)


@pytest.fixture(scope="session")
def full_report(full_store: str):
    """The English report executed against ``full_store`` (tests/report_runs.py)."""
    from tests.report_runs import execute_report

    return execute_report(full_store)


@pytest.fixture(scope="session")
def full_report_ru(full_store: str):
    """The Russian edition (``QUARTO_PROFILE=ru``) executed against ``full_store``."""
    from tests.report_runs import execute_report

    return execute_report(full_store, profile="ru")


@pytest.fixture(scope="session")
def suite_0_1(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One ``run all --quick --seeds 0,1 --device cpu`` (``tests.mlflow_layout.SNAPSHOT_ARGS``) into a
    fresh store for the whole session, run in-process; its MLflow layout is read at once, before any
    test adds runs to the store (test_experiments reruns a child and logs to a server over it).

    Returns ``uri``, ``folder``, ``status``, ``out``, ``err``, ``data`` and ``layout``.
    """
    from tests.mlflow_layout import SNAPSHOT_ARGS, store_layout
    from tests.mlflow_processes import run_cli

    folder = tmp_path_factory.mktemp("suite-0-1")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    status, out, err = run_cli([*SNAPSHOT_ARGS, "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri])
    pristine = tmp_path_factory.mktemp("suite-0-1-as-run")
    for database in ("mlflow.db", "optuna.db"):
        if (folder / database).exists():
            copy_sqlite(folder / database, pristine / database)
    return {"uri": uri, "folder": folder, "status": status, "out": out, "err": err, "data": tiny_fashion_root,
            "layout": store_layout(uri) if status == 0 else None, "pristine": pristine}


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of SQLite database ``source`` (its journal included), with SQLite's backup API."""
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
