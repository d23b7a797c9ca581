"""runs.EpochMetricsLogger: epochs reach a real SQLite store in batches, live when asked, none lost."""

from __future__ import annotations

import math

import mlflow
import pytest

from experiments.tracking import runs


@pytest.fixture
def active_run(tmp_path):
    """An active run in a fresh SQLite store; yields (client, run_id)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as run:
            yield mlflow.MlflowClient(tracking_uri=uri), run.info.run_id
    finally:
        mlflow.set_tracking_uri(previous)


def row(epoch: int) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "test_acc": 0.5 + epoch / 100, "eval_time_s": float("nan")}


def history(client, run_id: str, key: str) -> list[tuple[int, float, int]]:
    return sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key))


def test_rows_wait_for_the_interval_then_arrive_in_one_write_with_the_finals(active_run, monkeypatch):
    client, run_id = active_run
    writes = []
    real_log_batch = mlflow.MlflowClient.log_batch
    monkeypatch.setattr(mlflow.MlflowClient, "log_batch",
                        lambda self, *args, **kwargs: writes.append(kwargs) or real_log_batch(self, *args, **kwargs))
    logger = runs.EpochMetricsLogger(flush_every_s=3600)
    for epoch in (1, 2, 3):
        logger(epoch, row(epoch), model=None)
    assert history(client, run_id, "train_loss") == [] and writes == []

    logger.flush(final={"final_test_acc": 0.53, "skipped": math.nan})
    assert len(writes) == 1
    losses = history(client, run_id, "train_loss")
    assert [(step, value) for step, value, _ in losses] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert [t for _, _, t in losses] == sorted(t for _, _, t in losses)  # each epoch keeps the time it ended
    assert [(s, v) for s, v, _ in history(client, run_id, "final_test_acc")] == [(0, pytest.approx(0.53))]
    assert history(client, run_id, "eval_time_s") == history(client, run_id, "skipped") == []  # NaN left out
    assert "epoch" not in client.get_run(run_id).data.metrics

    logger.flush()  # nothing pending: no write
    assert len(writes) == 1


def test_a_zero_interval_writes_every_epoch_as_it_ends(active_run):
    client, run_id = active_run
    logger = runs.EpochMetricsLogger(flush_every_s=0)
    for epoch in (1, 2):
        logger(epoch, row(epoch), model=None)
        assert [step for step, _, _ in history(client, run_id, "test_acc")] == list(range(1, epoch + 1))


def test_needs_an_active_run():
    assert mlflow.active_run() is None
    with pytest.raises(RuntimeError, match="active MLflow run"):
        runs.EpochMetricsLogger()


def test_very_short_epochs_are_written_every_thousand_metrics(active_run):
    client, run_id = active_run
    logger = runs.EpochMetricsLogger(flush_every_s=3600)
    assert len(runs.finite_metrics(runs.row_metrics(row(1)))) == 2  # train_loss, test_acc (NaN left out)
    epochs_per_write = 500  # the documented bound, 1,000 waiting metrics, is reached by epoch 500
    for epoch in range(1, epochs_per_write + 2):
        logger(epoch, row(epoch), model=None)
    written = [step for step, _, _ in history(client, run_id, "test_acc")]
    assert written == list(range(1, epochs_per_write + 1))  # the last epoch waits for the next write


def test_a_failed_write_keeps_the_epochs_for_the_next_one(active_run, monkeypatch):
    client, run_id = active_run
    logger = runs.EpochMetricsLogger(flush_every_s=3600)
    logger(1, row(1), model=None)
    real_log_batch = mlflow.MlflowClient.log_batch
    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        logger.flush()
    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", real_log_batch)
    logger(2, row(2), model=None)
    logger.flush()
    assert [step for step, _, _ in history(client, run_id, "train_loss")] == [1, 2]
