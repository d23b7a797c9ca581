"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.idx_files import write_fashion_mnist


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` on a machine without CUDA (``scripts/gpu_check.sh`` runs them on one)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


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
def full_store(tiny_fashion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every experiment and the benchmark, ``--quick`` on the tiny data, in one store for the session."""
    from tests.benchmark_runs import log_quick_benchmark
    from tests.report_runs import run_experiments

    store = tmp_path_factory.mktemp("full-store")
    uri = run_experiments(["all"], tiny_fashion_root, store)
    assert log_quick_benchmark(tiny_fashion_root, store) == uri
    return uri


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
    return {"uri": uri, "folder": folder, "status": status, "out": out, "err": err, "data": tiny_fashion_root,
            "layout": store_layout(uri) if status == 0 else None}
