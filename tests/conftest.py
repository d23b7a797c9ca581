"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.idx_files import write_fashion_mnist


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
