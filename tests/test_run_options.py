"""The GPU issue's run options: ``--no-cuda-graphs`` reaches the trainer's config, and MLflow's
system metrics are logged with a run unless ``--no-system-metrics`` (a real SQLite store, MLflow's
own monitor thread sampling fast)."""

from __future__ import annotations

import time

import mlflow
import pytest

from experiments.cli import parse_args
from experiments.settings import Invocation, RunSettings


def test_the_flags_default_on_and_turn_off() -> None:
    default = RunSettings.from_args(parse_args(["run", "baseline"]))
    assert (default.cuda_graphs, default.system_metrics) == (True, True)
    assert default.train_config().cuda_graphs is True
    off = RunSettings.from_args(parse_args(["run", "baseline", "--no-cuda-graphs", "--no-system-metrics"]))
    assert (off.cuda_graphs, off.system_metrics) == (False, False)
    assert off.train_config(epochs=1).cuda_graphs is False
    assert "cuda_graphs" not in off.train_config().hyperparameters()  # a run option, not logged as a hyperparameter


@pytest.mark.parametrize("enabled", [True, False])
def test_system_metrics_are_logged_unless_turned_off(tmp_path, monkeypatch, capfd, enabled: bool) -> None:
    from experiments.tracking import runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # put back after the test by conftest's _restore_tracking_uri
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    with runs.tracked_run(RunSettings(Invocation(device="cpu"), system_metrics=enabled), "system-metrics") as run:
        time.sleep(1.5)  # several samples
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(run.info.run_id)
    system = {name for name in logged.data.metrics if name.startswith("system/")}
    assert logged.info.status == "FINISHED"
    if enabled:
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
        assert len(client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")) >= 2
    else:
        assert system == set()
    assert "system metrics monitoring" not in capfd.readouterr().err  # MLflow's INFO lines per run are quiet
