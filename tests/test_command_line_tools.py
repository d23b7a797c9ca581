"""The command line as users meet it: progress bars on a terminal and in a log, the
`anncore-experiments` console script, and `rerun`: of a custom run it rebuilds exactly the invocation and
options logged, of a whole study the invocation with the options given overriding the logged ones."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import mlflow
import pytest

from experiments.settings import INVOCATION_TAG, Invocation
from tests.mlflow_processes import run_cli

VENV_BIN = Path(sys.executable).parent
BAR = re.compile(r"\d+%\||\d(?:batch|it)/s|s/batch")  # a tqdm bar: "50%|#####  | 2/4 [..., 3.1batch/s]"
EPOCH_LINE = re.compile(r"^epoch (\d+)/2: train loss [\d.]+ acc [\d.]+% \| test loss", re.M)


def cli_command(data: Path, uri: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments", "run", "custom", "--quick", "--epochs", "2", "--device", "cpu",
            "--data-dir", str(data), "--tracking-uri", uri, *extra]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}


def run_on_a_terminal(command: list[str], cwd: Path) -> str:
    """Run ``command`` with stdout and stderr on a pseudo-terminal; return all it wrote."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # else 0 columns: empty bars
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, cwd=cwd,
                               env=env())
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=60) == 0, b"".join(chunks)[-2000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def terminal_outputs(tiny_fashion_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("terminal")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with_bars = run_on_a_terminal(cli_command(tiny_fashion_root, uri), folder)
    without = run_on_a_terminal(cli_command(tiny_fashion_root, uri, "--no-progress"), folder)
    return with_bars, without


def test_a_terminal_shows_the_bars_and_no_progress_silences_them(terminal_outputs):
    with_bars, without = terminal_outputs
    assert BAR.search(with_bars), with_bars[-1500:]  # the check below has something to miss
    assert [int(n) for n in EPOCH_LINE.findall(with_bars.replace("\r", "\n"))] == [1, 2]
    assert not BAR.search(without) and not EPOCH_LINE.search(without), without[-1500:]
    assert "FINISHED" in without  # the summary still comes


def test_a_log_file_gets_one_line_per_epoch_and_no_partial_bars(tiny_fashion_root, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run(cli_command(tiny_fashion_root, uri), capture_output=True, text=True, env=env(),
                            cwd=tmp_path, timeout=300)  # pipes, as `... > run.log 2>&1` or CI
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    assert not BAR.search(log) and "\r" not in log, log[-1500:]
    assert [int(n) for n in EPOCH_LINE.findall(log)] == [1, 2]


def test_the_console_script_is_installed_and_runs_experiments(tmp_path):
    script = VENV_BIN / "anncore-experiments"
    assert script.is_file() and os.access(script, os.X_OK)
    listing = subprocess.run([str(script), "list"], capture_output=True, text=True, env=env(), timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"^\s*simple_ann\b", listing.stdout, re.M) and re.search(r"^\s*depth\b", listing.stdout, re.M)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run([str(script), "run", "simple_ann", "--no-progress", "--tracking-uri", uri],
                            capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("anncore-simple_ann").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["parameter_count"] == 58
    bad = subprocess.run([str(script), "run", "nonesuch"], capture_output=True, text=True, env=env(), timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_rerun_of_a_study_parent_reruns_every_arm_with_the_given_options(tiny_fashion_root, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--no-progress", "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri]
    assert run_cli(["run", "depth", "--quick", "--epochs", "1", "--seeds", "0", "--device", "cpu", *common])[0] == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.get_experiment_by_name("anncore-depth").experiment_id
    [old] = client.search_runs([experiment_id], "tags.`anncore.role` = 'parent'")

    status, out, err = run_cli(["rerun", old.info.run_id, "--epochs", "2", "--seeds", "0,1", *common])
    assert status == 0, err
    parents = client.search_runs([experiment_id], "tags.`anncore.role` = 'parent'", order_by=["attributes.start_time"])
    new = parents[-1]
    assert len(parents) == 2 and new.info.status == "FINISHED"
    assert new.data.tags["anncore.rerun_of"] == old.info.run_id
    assert new.data.params["epochs"] == "2" and new.data.params["seeds"] == "0,1"  # the options won
    assert new.data.params["quick"] == "true" and new.data.params["device"] == "cpu"  # the rest as logged
    assert new.data.params["arms"] == old.data.params["arms"]
    asked = Invocation(epochs=1, seeds=(0,), device="cpu", quick=True)
    assert Invocation.from_json(old.data.tags[INVOCATION_TAG]) == asked
    assert Invocation.from_json(new.data.tags[INVOCATION_TAG]) == Invocation(epochs=2, seeds=(0, 1), device="cpu", quick=True)
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{new.info.run_id}'")
    arms = {arm.split("=")[0] for arm in old.data.params["arms"].split(";")}
    assert len(arms) == 3
    assert sorted((c.data.tags["anncore.arm"], c.data.tags["anncore.seed"]) for c in children) == sorted(
        (arm, seed) for arm in arms for seed in ("0", "1"))
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["anncore.rerun_of"] == old.info.run_id
        assert [m.step for m in client.get_metric_history(child.info.run_id, "test_acc")] == [1, 2]


def test_rerun_of_a_custom_run_rebuilds_its_invocation_and_options(tiny_fashion_root, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--no-progress", "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri]
    assert run_cli(["run", "custom", "--quick", "--epochs", "1", "--seeds", "3,4", "--device", "cpu",
                    "--hidden-sizes", "16,8", "--dropout", "0.1", "--lr", "0.01", "--activation", "tanh", *common])[0] == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.get_experiment_by_name("anncore-custom").experiment_id
    [old] = client.search_runs([experiment_id])
    assert Invocation.from_json(old.data.tags[INVOCATION_TAG]) == Invocation(epochs=1, seeds=(3, 4), device="cpu", quick=True)

    status, _, err = run_cli(["rerun", old.info.run_id, *common])  # nothing given again
    assert status == 0, err
    [new] = client.search_runs([experiment_id], f"tags.`anncore.rerun_of` = '{old.info.run_id}'")
    assert new.info.status == "FINISHED"
    assert new.data.tags[INVOCATION_TAG] == old.data.tags[INVOCATION_TAG]
    same = ("seed", "seeds", "epochs", "device", "quick", "hidden_sizes", "dropout_rate", "learning_rate", "activation")
    assert {key: new.data.params[key] for key in same} == {key: old.data.params[key] for key in same}
    assert old.data.params["hidden_sizes"] == "16,8" and old.data.params["activation"] == "tanh"


def test_a_run_logged_before_the_invocation_tag_gives_the_nearest_invocation():
    params = {"epochs": "3", "seed": "1", "seeds": "1,2", "device": "cpu", "quick": "true"}
    assert Invocation.from_params(params) == Invocation(epochs=3, seeds=(1, 2), device="cpu", quick=True)
    assert Invocation.from_params({"seed": "5"}) == Invocation(seeds=(5,))
