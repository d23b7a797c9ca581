"""A store write is never cut in half by Ctrl-C or SIGTERM: the signal waits for the write to end."""

from __future__ import annotations

import os
import signal

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
