"""The command line: strict parsing with one-line errors (status 2), `list`, `--help`, and the MLproject."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from experiments.__main__ import main
from experiments.cli import parse_args
from experiments.studies import EXPERIMENT_NAMES

REPO = Path(__file__).resolve().parent.parent
PREFIX = ["python", "-m", "experiments"]

# (command line, text the error line must contain)
BAD_COMMAND_LINES = [
    ("run foo", "'foo'"),
    ("run depth bogus", "'bogus'"),
    ("run all depth", "'all' cannot be combined"),
    ("run", "NAME"),
    ("frob", "'frob'"),
    ("run custom --hidden-sizes 512,abc", "'abc'"),
    ("run custom --hidden-sizes -3", "-3"),
    ("run custom --hidden-sizes 512,0", "0 is out of range"),
    ("run custom --hidden-sizes 512,,256", "'512,,256'"),
    ("run custom --hidden-sizes [512,256]", "'[512"),
    ("run custom --hidden-sizes __import__('os')", "__import__"),
    ("run custom --dropout 1.5", "'1.5'"),
    ("run custom --dropout -0.1", "'-0.1'"),
    ("run custom --dropout nan", "'nan'"),
    ("run custom --lr 0", "'0'"),
    ("run custom --lr abc", "'abc'"),
    ("run custom --lr inf", "'inf'"),
    ("run custom --activation swish", "'swish'"),
    ("run custom --activation softmax", "'softmax'"),
    ("run all --epochs 0", "'0'"),
    ("run all --epochs 2.5", "'2.5'"),
    ("run all --seeds 1,,2", "'1,,2'"),
    ("run all --seeds -1", "-1"),
    ("run all --seeds a", "'a'"),
    ("run all --seeds 0,0", "repeats"),
    ("run all --device tpu", "'tpu'"),
    ("run activation_study --target-accuracy 1.5", "'1.5'"),
    ("run simple_ann --tracking-uri ftp://host/x", "'ftp'"),
    ("run simple_ann --tracking-uri /tmp/mlruns", "file store"),
    ("run simple_ann --tracking-uri file:///tmp/mlruns", "file store"),
    ("run simple_ann --tracking-uri sqlite://", "sqlite:///"),
    ("rerun", "RUN_ID"),
]


@pytest.mark.parametrize("command, named", BAD_COMMAND_LINES, ids=[c for c, _ in BAD_COMMAND_LINES])
def test_bad_command_line_is_one_error_line_and_status_2(command, named, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even a default store
    status = main(shlex.split(command))
    out, err = capsys.readouterr()
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and named in lines[0]
    assert "Traceback" not in err + out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, accepted", [
    ("run foo", "activations, hand_calculations, simple_ann, synthetic, baseline, depth, activation_study, custom, sweep, all"),
    ("run custom --activation swish", "sigmoid, tanh, relu, leaky_relu, elu, identity"),
    ("run custom --hidden-sizes 512,abc", "such as 512,256"),
    ("run all --seeds 1,,2", "such as 0,1,2"),
    ("run custom --dropout 1.5", "0 <= p < 1"),
    ("run simple_ann --tracking-uri ftp://host/x", "sqlite, http, https"),
])
def test_error_says_what_is_accepted(command, accepted, capsys):
    assert main(shlex.split(command)) == 2
    assert accepted in capsys.readouterr().err


def test_missing_dataset_names_data_dir_and_writes_no_store(tmp_path, capsys):
    store = tmp_path / "store" / "mlflow.db"
    status = main(["run", "baseline", "--data-dir", str(tmp_path / "nowhere"), "--tracking-uri", f"sqlite:///{store}"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--data-dir" in err
    assert not store.exists()


def test_tracking_uri_from_the_environment_is_checked_too(capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "./mlruns")
    assert main(["run", "simple_ann"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'./mlruns' is a file store" in err and "$MLFLOW_TRACKING_URI" in err


def test_cuda_without_a_gpu_is_refused(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    status = main(["run", "simple_ann", "--device", "cuda", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "CUDA is not available" in err
    assert not (tmp_path / "m.db").exists()


def test_unreachable_server_is_a_clear_error(capsys):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = main(["run", "simple_ann", "--tracking-uri", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert f"http://127.0.0.1:{port} is not reachable" in err


def test_real_entry_point_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "experiments", "run", "custom", "--hidden-sizes", "512,abc"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: argument --hidden-sizes: 'abc' is not an integer")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(EXPERIMENT_NAMES)


def test_help_exits_0(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--epochs", "--seeds", "--device", "--data-dir", "--tracking-uri", "--quick",
                   "--no-progress", "--hidden-sizes", "--dropout", "--lr", "--activation"):
        assert option in out


def test_good_options_parse_to_clean_values():
    args = parse_args(["run", "custom", "--hidden-sizes", " 256, 128 ", "--dropout", "0", "--lr", "1e-3",
                       "--seeds", "2,0,1", "--epochs", "3", "--activation", "tanh", "--device", "cpu"])
    assert args.hidden_sizes == (256, 128) and args.dropout == 0.0 and args.lr == 0.001
    assert args.seeds == (2, 0, 1) and args.epochs == 3 and args.activation == "tanh" and args.device == "cpu"


def test_cli_activations_are_the_elementwise_registry_names(capsys):
    from anncore.activations import ACTIVATION_NAMES

    for name in ACTIVATION_NAMES:
        status = main(["run", "custom", "--activation", name, "--tracking-uri", "ftp://refused"])
        err = capsys.readouterr().err
        assert status == 2
        assert ("activation" in err) == (name == "softmax"), (name, err)


# --- MLproject ------------------------------------------------------------------------------

def entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


def test_mlproject_has_an_entry_point_per_experiment_with_a_valid_command():
    points = entry_points()
    assert set(points) == {*EXPERIMENT_NAMES, "main"}
    for name, point in points.items():
        defaults = {key: spec["default"] for key, spec in point.get("parameters", {}).items()}
        argv = shlex.split(point["command"].format(**defaults))
        assert argv[:3] == PREFIX, name
        args = parse_args(argv[3:])  # exits (fails the test) on an invalid command
        assert args.command == "run"
        assert args.names == (["all"] if name == "main" else [name])


def test_mlflow_run_entry_point(tmp_path, tiny_fashion_root):
    """`mlflow run . -e custom --env-manager local` really runs the experiment into the store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "custom", "--env-manager", "local",
               "-P", "epochs=1", "-P", "hidden_sizes=32,16", "-P", f"data-dir={tiny_fashion_root}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("anncore-custom").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["hidden_sizes"] == "32,16" and run.data.params["epochs"] == "1"
    project_run = client.get_run(run.data.tags["anncore.project_run_id"])
    assert project_run.info.status == "FINISHED" and project_run.info.run_id != run.info.run_id
