"""Reliability (issue 6): bad input, failures inside runs, interruption, concurrency,
reproducibility, a real tracking server, and what may never be logged or evaluated.

What the other test files already cover is not repeated here: a thrown exception failing a run
and the suite going on, Ctrl-C simulated in-process, SIGTERM of a single run, `rerun`
reproducing metrics and refusing other data, the logged checksum against the files
(tests/test_experiments_failures.py, tests/test_experiments.py) and 37 bad command lines
(tests/test_cli.py). This file adds the single table of bad inputs across the three layers,
divergence with the epochs before it, real SIGINT/SIGTERM into a study, two whole suites on
the default store, a suite served by `mlflow server`, and the security checks.
"""

from __future__ import annotations

import ast
import contextlib
import getpass
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import mlflow
import numpy as np
import pytest
import requests
import torch
from mlflow.entities import ViewType

import anncore.trainer as trainer
from experiments.studies import EXPERIMENT_NAMES
from tests.idx_files import write_fashion_mnist
from tests.mlflow_processes import free_port, run_cli, running_mlflow_server
from experiments.search.plan import QUICK_TRIALS

REPO = Path(__file__).resolve().parent.parent
TIMING_METRICS = {"epoch_time_s", "samples_per_sec", "eval_time_s", "train_time_s"}
STUDY_ARMS = {"depth": 3, "activation_study": 5}  # TO-DO 4.1: three depths; TO-DO 4.2: five activations
FAKE_SECRET_NAME = "ANNCORE_TEST_API_TOKEN"
FAKE_SECRET = "tok_5f8c2d9e1a7b4c3f9e0d"
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)


def deterministic(metrics) -> set[str]:
    """The metric names a seed fixes: not timings, nor MLflow's system metrics (sampled every 10 s)."""
    return {name for name in metrics if name not in TIMING_METRICS and not name.startswith("system/")}


# --- helpers ----------------------------------------------------------------------------------

def client_for(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri)


def every_run(uri: str) -> list:
    """Every run in the store, deleted ones included, across all experiments."""
    client = client_for(uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return list(client.search_runs(ids, run_view_type=ViewType.ALL, max_results=10_000)) if ids else []


def runs_of(uri: str, name: str) -> list:
    client = client_for(uri)
    experiment = client.get_experiment_by_name(f"anncore-{name}")
    if experiment is None:
        return []
    return list(client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]))


def steps(uri: str, run, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client_for(uri).get_metric_history(run.info.run_id, key)}


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test's environment without MLFLOW_TRACKING_URI / MLFLOW_RUN_ID, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised SQLite store with no runs (made once: creating the schema takes seconds)."""
    path = tmp_path_factory.mktemp("empty-template") / "mlflow.db"
    client_for(f"sqlite:///{path}").search_experiments()
    return path


def fresh_store(empty_store: Path, folder: Path) -> str:
    """A copy of the empty store in ``folder``; returns its URI."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_store, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


# --- 1. the bad-input corpus ------------------------------------------------------------------

@dataclass
class Corpus:
    """What the bad inputs are tried against: a store with runs, an empty one, broken data roots."""

    store: str
    empty: str
    run_id: str
    data: Path
    truncated: Path
    bad_magic: Path
    junk_db: Path
    workdir: Path
    monkeypatch: pytest.MonkeyPatch | None = None


@pytest.fixture(scope="module")
def corpus_world(tmp_path_factory, empty_store) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    store = fresh_store(empty_store, root / "store")
    status, _, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", store])
    assert status == 0, err
    [run] = runs_of(store, "simple_ann")
    empty = fresh_store(empty_store, root / "empty")

    data = write_fashion_mnist(root / "data", n_train=60, n_test=20)
    truncated = write_fashion_mnist(root / "truncated", n_train=60, n_test=20)
    images = truncated / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    bad_magic = write_fashion_mnist(root / "bad-magic", n_train=60, n_test=20)
    labels = bad_magic / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes((2051).to_bytes(4, "big") + labels.read_bytes()[4:])  # an image file's magic
    junk_db = root / "junk" / "mlflow.db"
    junk_db.parent.mkdir()
    junk_db.write_bytes(b"not a database\n" * 100)
    return Corpus(store, empty, run.info.run_id, data, truncated, bad_magic, junk_db, root / "cwd")


def raised(kinds: tuple[type[BaseException], ...], function: Callable[[], object]) -> str:
    """Call ``function``; it must raise one of ``kinds``. Return the message a user reads."""
    try:
        result = function()
    except kinds as error:
        return str(error)
    raise AssertionError(f"no {[k.__name__ for k in kinds]} raised; returned {result!r}")


def cli(command: str) -> Callable[[Corpus], str]:
    """A command line (``{store}``, ``{data}``, ... filled from the corpus) that must exit 2."""

    def attempt(world: Corpus) -> str:
        argv = shlex.split(command.format(**vars(world)))
        status, out, err = run_cli(argv)
        assert status == 2, (status, err)
        assert "Traceback" not in out + err
        assert err.startswith("error: "), err
        return err

    attempt.__doc__ = command
    return attempt


def anncore_call(function: Callable[[Corpus], object], *kinds: type[BaseException]) -> Callable[[Corpus], str]:
    return lambda world: raised(kinds or (ValueError, TypeError), lambda: function(world))


def _activation(name: str):
    from anncore.activations import get_activation

    return get_activation(name)


def _custom_ann(sizes, **kwargs):
    from anncore.models import CustomANN

    return CustomANN(sizes, **kwargs)


def _train_config(**kwargs):
    return trainer.TrainConfig(**kwargs)


def _mismatched_layers(world: Corpus):
    from anncore.hand_calculation import DenseLayer, forward_backward

    return forward_backward([0.5, -0.2], 1.0, [DenseLayer([[0.1, 0.2, 0.3]], [0.0], "sigmoid")])


def _load(root_of: Callable[[Corpus], Path], train: bool = True) -> Callable[[Corpus], object]:
    def load(world: Corpus):
        from anncore.data import load_fashion_mnist

        return load_fashion_mnist(root_of(world), train=train, download=False)

    return load


def _store(world: Corpus, uri: str | None = None):
    from reporting.store import Store

    return Store(uri or world.store)


def _empty_store_status(world: Corpus) -> str:
    """A report chunk's status line when the store has no runs: the message, not a traceback."""
    from reporting.section import Section

    world.monkeypatch.setenv("MLFLOW_TRACKING_URI", world.empty)
    text = Section("baseline").status().data
    assert "```bash\npython -m experiments run baseline\n```" in text
    [line] = [line for line in text.splitlines() if "No results yet" in line]
    return line


def _empty_store_overview(world: Corpus) -> str:
    from reporting.sections.overview import provenance

    world.monkeypatch.setenv("MLFLOW_TRACKING_URI", world.empty)
    return provenance().parts[0].data


def _missing_store_status(world: Corpus) -> str:
    from reporting.section import Section

    world.monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{world.workdir / 'none' / 'mlflow.db'}")
    text = Section("depth").status().data
    assert not (world.workdir / "none").exists()  # reading a report creates no store
    [line] = [line for line in text.splitlines() if "No results yet" in line]
    return line


def _artifact(path: str) -> Callable[[Corpus], object]:
    def load(world: Corpus):
        store = _store(world)
        return store.load_text(store.latest_finished_run("simple_ann"), path)

    return load


def _bad_decimals(world: Corpus):
    from anncore.worked_examples import WORKED_EXAMPLES
    from reporting.hand_calc_latex import trace_markdown

    return trace_markdown(WORKED_EXAMPLES["todo_3_2_1"].solve().to_dict(), decimals=0)


RUN_ID = "0123456789abcdef0123456789abcdef"

# (id, attempt, text naming the bad value, text saying what is accepted)
BAD_INPUTS: list[tuple[str, Callable[[Corpus], str], str, str]] = [
    # anncore: the library raises ValueError/TypeError (or FileNotFoundError for missing data)
    ("anncore-unknown-activation", anncore_call(lambda w: _activation("swish")), "'swish'", "accepted names: ['sigmoid'"),
    ("anncore-layer-sizes-784", anncore_call(lambda w: _custom_ann([784])), "[784]", "at least 2 entries"),
    ("anncore-layer-sizes-784-0", anncore_call(lambda w: _custom_ann([784, 0])), "got 0", "positive integer (>= 1)"),
    ("anncore-layer-sizes-784-1.5", anncore_call(lambda w: _custom_ann([784, 1.5])), "got 1.5", "positive integer"),
    ("anncore-layer-sizes-negative", anncore_call(lambda w: _custom_ann([784, -3, 10])), "got -3", "positive integer"),
    ("anncore-dropout-1.5", anncore_call(lambda w: _custom_ann([784, 10], dropout_rate=1.5)), "got 1.5", "[0, 1)"),
    ("anncore-lr-0", anncore_call(lambda w: _train_config(learning_rate=0)), "got 0", "finite number > 0"),
    ("anncore-lr-abc", anncore_call(lambda w: _train_config(learning_rate="abc")), "'abc'", "finite number > 0"),
    ("anncore-epochs-0", anncore_call(lambda w: _train_config(epochs=0)), "epochs", "integer >= 1, got 0"),
    ("anncore-batch-size-0", anncore_call(lambda w: _train_config(batch_size=0)), "batch_size", "integer >= 1, got 0"),
    ("anncore-weight-shape-mismatch", anncore_call(_mismatched_layers), "shape (1, 3)", "weights must be (n_out, n_in)"),
    ("anncore-idx-truncated", anncore_call(_load(lambda w: w.truncated)), "train-images-idx3-ubyte' is truncated",
     "header promises 60 items"),
    ("anncore-idx-wrong-magic", anncore_call(_load(lambda w: w.bad_magic, train=False)), "magic number 2051",
     "expected 2049"),
    ("anncore-data-dir-missing", anncore_call(_load(lambda w: w.workdir / "nowhere"), FileNotFoundError),
     "nowhere", "Pass --data-dir pointing at a folder that contains FashionMNIST/raw/"),
    # the command line: exit status 2, one `error:` line, nothing written
    ("cli-unknown-experiment", cli("run foo"), "'foo'", "accepted: activations, hand_calculations"),
    ("cli-unknown-activation", cli("run custom --activation swish"), "'swish'", "accepted: sigmoid, tanh, relu"),
    ("cli-hidden-sizes-512,abc", cli("run custom --hidden-sizes 512,abc"), "'abc'", "such as 512,256"),
    ("cli-hidden-sizes--3", cli("run custom --hidden-sizes -3"), "-3 is out of range", "integers from 1 to"),
    ("cli-dropout-1.5", cli("run custom --dropout 1.5"), "'1.5'", "0 <= p < 1"),
    ("cli-lr-abc", cli("run custom --lr abc"), "'abc' is not a number", "greater than 0"),
    ("cli-lr-0", cli("run custom --lr 0"), "'0' is not positive", "greater than 0"),
    ("cli-epochs-0", cli("run all --epochs 0"), "'0'", "an integer from 1 to"),
    ("cli-seeds-1,,2", cli("run all --seeds 1,,2"), "'1,,2' has an empty item", "such as 0,1,2"),
    ("cli-data-dir-missing", cli("run baseline --data-dir {workdir}/nowhere --tracking-uri {store}"),
     "nowhere", "Pass --data-dir"),
    ("cli-data-file-truncated", cli("run custom --data-dir {truncated} --tracking-uri {store}"),
     "train-images-idx3-ubyte' is truncated", "accepted: the four FashionMNIST IDX files"),
    ("cli-data-file-wrong-magic", cli("run depth --data-dir {bad_magic} --tracking-uri {store}"),
     "magic number 2051", "expected 2049"),
    ("cli-tracking-uri-ftp", cli("run simple_ann --tracking-uri ftp://host/mlruns"), "'ftp'", "accepted: sqlite, http, https"),
    ("cli-tracking-uri-file-store", cli("run simple_ann --tracking-uri {workdir}/mlruns"), "is a file store",
     "accepted: sqlite:///path/mlflow.db"),
    ("cli-tracking-uri-not-sqlite", cli("run simple_ann --tracking-uri sqlite:///{junk_db}"), "junk/mlflow.db",
     "accepted: an MLflow SQLite database"),
    ("cli-rerun-unknown-run-id", cli(f"rerun {RUN_ID} --tracking-uri {{store}}"), f"'{RUN_ID}' does not exist",
     "accepted: the id of a run"),
    ("cli-rerun-path-as-run-id", cli("rerun ../../etc/passwd --tracking-uri {store}"), "'../../etc/passwd' does not exist",
     "accepted: the id of a run"),
    # the report's helpers
    ("report-empty-store-section", _empty_store_status, "empty/mlflow.db", "no finished run of the experiment `anncore-baseline`"),
    ("report-empty-store-overview", _empty_store_overview, "empty/mlflow.db", "python -m experiments run all"),
    ("report-store-missing", _missing_store_status, "none/mlflow.db", "no finished run of the experiment `anncore-depth`"),
    ("report-store-ftp", anncore_call(lambda w: _store(w, "ftp://host/mlruns")), "'ftp'", "accepted: sqlite, http, https"),
    ("report-store-not-sqlite", anncore_call(lambda w: _store(w, f"sqlite:///{w.junk_db}")), "junk/mlflow.db",
     "is not an SQLite database; accepted:"),
    ("report-unknown-study", anncore_call(lambda w: _store(w).latest_finished_run("deep")), "'deep'",
     "accepted: activations, hand_calculations"),
    ("report-unknown-run-id", anncore_call(lambda w: _store(w).run_by_id("simple_ann", RUN_ID)), f"'{RUN_ID}' does not exist",
     "accepted: the id of a run"),
    ("report-missing-artifact", anncore_call(_artifact("history.csv"), FileNotFoundError), "'history.csv'",
     "accepted: model_summary.txt, parameters.csv"),
    ("report-artifact-outside-run", anncore_call(_artifact("../../../../etc/passwd")),
     "'../../../../etc/passwd' is not inside the run", "accepted: a relative path"),
    ("report-artifact-absolute", anncore_call(_artifact("/etc/passwd")), "'/etc/passwd' is not inside the run",
     "accepted: a relative path"),
    ("report-latex-decimals-0", anncore_call(_bad_decimals), "got 0", "an integer from 1 to 12"),
]


def test_corpus_has_at_least_25_cases_across_the_three_layers():
    layers = [case_id.split("-", 1)[0] for case_id, *_ in BAD_INPUTS]
    assert len(BAD_INPUTS) >= 25 and len(set(case_id for case_id, *_ in BAD_INPUTS)) == len(BAD_INPUTS)
    assert set(layers) == {"anncore", "cli", "report"} and min(map(layers.count, set(layers))) >= 8


@pytest.mark.parametrize("attempt, named, accepted", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gives_one_clear_line_and_writes_nothing(attempt, named, accepted, corpus_world, tmp_path,
                                                           monkeypatch):
    world = Corpus(**{**vars(corpus_world), "workdir": tmp_path, "monkeypatch": monkeypatch})
    monkeypatch.chdir(tmp_path)  # a default ./mlruns would land here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.store)  # ...or, for the library, in the store
    before = {uri: sorted((r.info.run_id, r.info.status) for r in every_run(uri)) for uri in (world.store, world.empty)}

    message = attempt(world)

    lines = message.strip().splitlines()
    assert len(lines) == 1, message
    assert named in lines[0] and accepted in lines[0], lines[0]
    assert "Traceback" not in message
    after = {uri: sorted((r.info.run_id, r.info.status) for r in every_run(uri)) for uri in (world.store, world.empty)}
    assert after == before  # no half-made run, nothing left RUNNING
    assert list(tmp_path.iterdir()) == []


# --- 2. a run whose training diverges -----------------------------------------------------------

def test_diverging_run_keeps_the_epochs_before_it_and_the_suite_reports_it(empty_store, tmp_path, tiny_fashion_root,
                                                                           monkeypatch):
    """Epoch 1 trains normally; then the learning rate becomes 1e30 and the loss overflows for real."""
    real = trainer.train_one_epoch

    def train_one_epoch(model, batches, optimizer, epoch, *args, **kwargs):
        if epoch == 2:
            for group in optimizer.param_groups:
                group["lr"] = 1e30
        return real(model, batches, optimizer, epoch, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_one_epoch", train_one_epoch)
    uri = fresh_store(empty_store, tmp_path / "store")
    status, out, err = run_cli(["run", "custom", "simple_ann", "--quick", "--epochs", "3", "--no-progress",
                                "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri])

    assert status == 1
    [failed] = runs_of(uri, "custom")
    assert failed.info.status == "FAILED"
    reason = failed.data.tags["anncore.error"]
    assert re.fullmatch(r"NonFiniteLossError: training loss became (nan|inf|-inf) at epoch 2, batch \d+; "
                        r"try a smaller learning rate", reason), reason
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s", "samples_per_sec"):
        series = steps(uri, failed, key)
        assert list(series) == [1] and np.isfinite(series[1]), key  # epoch 1 kept, nothing from epoch 2
    assert 0.0 <= steps(uri, failed, "test_acc")[1] <= 1.0
    assert not {"final_test_acc", "final_train_acc"} & set(failed.data.metrics)
    [finished] = runs_of(uri, "simple_ann")  # the suite went on after the failure
    assert finished.info.status == "FINISHED" and finished.data.metrics["parameter_count"] == 58
    assert f"error: experiment custom failed: {reason}" in err
    summary = out.split("Summary", 1)[1]
    assert re.search(rf"custom\s+FAILED\s+{failed.info.run_id}", summary)
    assert re.search(rf"simple_ann\s+FINISHED\s+{finished.info.run_id}", summary)
    assert "1 of 2 experiment(s) failed:" in summary and f"custom (run {failed.info.run_id}): {reason}" in summary
    assert summary.index("custom") < summary.index("simple_ann")


# --- 3. SIGINT and SIGTERM into a running study ---------------------------------------------------

def communicate_or_show_stacks(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``process.communicate(timeout)``; if it is still running then, fail showing where it was.

    ``python -m experiments`` prints every thread's Python stack on SIGUSR1 (faulthandler), so
    the failure message says what the process was doing instead of only that it hung.
    """
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(3)
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"still running {timeout} s after the signal; its Python stacks (faulthandler):\n"
                    f"{err[-8000:]}\n--- stdout:\n{out[-2000:]}")


@pytest.mark.parametrize("signum, status, reason", [
    (signal.SIGINT, 130, "KeyboardInterrupt"),
    (signal.SIGTERM, 143, "Terminated: SIGTERM"),
], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_study_kills_child_and_parent(signum, status, reason, empty_store, tmp_path, tiny_fashion_root):
    uri = fresh_store(empty_store, tmp_path / "store")
    command = [sys.executable, "-m", "experiments", "run", "depth", "simple_ann", "--epochs", "10000", "--no-progress",
               "--data-dir", str(tiny_fashion_root), "--tracking-uri", uri]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=subprocess_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 240
        while not any(steps(uri, r, "test_acc") for r in runs_of(uri, "depth")):  # an epoch is in the store
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no epoch logged"
            time.sleep(0.1)
        process.send_signal(signum)
        out, err = communicate_or_show_stacks(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == status, err[-2000:]
    assert "Traceback" not in err
    runs = every_run(uri)
    assert not [r for r in runs if r.info.status in ("RUNNING", "SCHEDULED")]
    [parent] = [r for r in runs if r.data.tags.get("anncore.role") == "parent"]
    [child] = [r for r in runs if r.data.tags.get("anncore.role") == "child"]  # the first arm, interrupted
    for run in (parent, child):
        assert run.info.status == "KILLED" and run.data.tags["anncore.error"] == reason
        assert run.info.end_time is not None
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    test_acc = steps(uri, child, "test_acc")
    assert sorted(test_acc) == list(range(1, len(test_acc) + 1))  # every epoch up to the signal, readable
    assert sorted(steps(uri, child, "train_loss")) == sorted(test_acc)
    assert all(0.0 <= value <= 1.0 for value in test_acc.values())
    assert runs_of(uri, "simple_ann") == []  # the suite stopped
    summary = out.split("Summary", 1)[1]
    assert re.search(rf"depth\s+KILLED\s+{parent.info.run_id}", summary)


# --- 4 and 5. two whole suites at once on the default store; same seed, same numbers ---------------

@pytest.fixture(scope="module")
def two_suites(tmp_path_factory, tiny_fashion_root) -> dict:
    """Two `run all --quick` started together in one folder, both on the default ./mlruns store."""
    workdir = tmp_path_factory.mktemp("two-suites")
    command = [sys.executable, "-m", "experiments", "run", "all", "--quick", "--no-progress", "--device", "cpu",
               "--data-dir", str(tiny_fashion_root)]
    env = subprocess_env(**{FAKE_SECRET_NAME: FAKE_SECRET})
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                  cwd=workdir) for _ in range(2)]
    try:
        outputs = [process.communicate(timeout=560) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return {"workdir": workdir, "uri": f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}", "env": env,
            "results": [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]}


def test_two_suites_on_the_default_store_both_finish_every_run(two_suites):
    for status, out, err in two_suites["results"]:
        assert status == 0, err[-3000:]
        assert out.split("Summary", 1)[1].count("FINISHED") == len(EXPERIMENT_NAMES)
    assert sorted(p.name for p in two_suites["workdir"].iterdir()) == ["mlruns"]
    assert (two_suites["workdir"] / "mlruns" / "mlflow.db").is_file()
    uri = two_suites["uri"]
    client = client_for(uri)
    assert sorted(e.name for e in client.search_experiments()) == sorted(
        [f"anncore-{name}" for name in EXPERIMENT_NAMES] + ["Default"])
    for name in EXPERIMENT_NAMES:
        runs = runs_of(uri, name)
        assert {r.info.status for r in runs} == {"FINISHED"}, name
        roles = [r.data.tags["anncore.role"] for r in runs]
        if name in STUDY_ARMS:
            parents = {r.info.run_id for r in runs if r.data.tags["anncore.role"] == "parent"}
            assert len(parents) == 2 and roles.count("child") == 2 * STUDY_ARMS[name], name
            for parent in parents:
                children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
                assert len(children) == STUDY_ARMS[name], name
        elif name == "sweep":
            # Both suites continue one Optuna study (same name and storage): one parent, every
            # trial number once, and the champion retrained by whichever suite found it.
            assert roles.count("parent") == 1, roles
            trials = sorted(int(r.data.tags["anncore.trial_number"]) for r in runs if "anncore.trial_number" in r.data.tags)
            assert trials == list(range(2 * QUICK_TRIALS)), trials
            assert 1 <= sum(r.data.tags.get("anncore.arm") == "champion" for r in runs) <= 2
        else:
            assert roles == ["single", "single"], name
        for run in runs:
            assert Path(run.info.artifact_uri.removeprefix("file://")).is_dir()
    assert not [r for r in every_run(uri) if r.info.status != "FINISHED"]


def training_runs_by_key(uri: str) -> dict[tuple, list]:
    """Training runs grouped by (experiment, arm, seed): one per suite in each group."""
    groups: dict[tuple, list] = {}
    for name in ("synthetic", "baseline", "custom", "depth", "activation_study"):
        for run in runs_of(uri, name):
            if run.data.tags["anncore.role"] == "parent":
                continue
            key = (name, run.data.tags.get("anncore.arm"), run.data.params["seed"])
            groups.setdefault(key, []).append(run)
    return groups


def test_same_experiment_and_seed_twice_gives_identical_epoch_metrics(two_suites):
    uri = two_suites["uri"]
    groups = training_runs_by_key(uri)
    assert len(groups) == 3 + STUDY_ARMS["depth"] + STUDY_ARMS["activation_study"]
    for key, (first, second) in groups.items():
        assert first.data.params["device"] == "cpu"
        keys = deterministic(first.data.metrics)
        assert keys == deterministic(second.data.metrics)
        assert {"train_loss", "train_acc", "test_loss", "test_acc", "final_test_acc"} <= keys
        for metric in keys:
            assert steps(uri, first, metric) == steps(uri, second, metric), (key, metric)
        assert len(steps(uri, first, "train_loss")) == int(first.data.params["epochs"])


# --- 6. a real tracking server ----------------------------------------------------------------

@pytest.fixture
def tracking_server(tmp_path):
    """`mlflow server` on a free loopback port with its own new SQLite backend and artifact folder."""
    backend, artifacts = tmp_path / "server" / "mlflow.db", tmp_path / "server" / "artifacts"
    backend.parent.mkdir()
    with running_mlflow_server(f"sqlite:///{backend}", artifacts, tmp_path / "server.log", env=subprocess_env()) as url:
        yield {"url": url, "backend": f"sqlite:///{backend}", "artifacts": artifacts}


def test_whole_suite_logs_to_a_real_tracking_server(tracking_server, tiny_fashion_root, tmp_path):
    url = tracking_server["url"]
    command = [sys.executable, "-m", "experiments", "run", "all", "--quick", "--no-progress",
               "--data-dir", str(tiny_fashion_root), "--tracking-uri", url]
    # With a tracking server the sweep keeps its Optuna study in the user's data folder.
    env = {**subprocess_env(), "XDG_DATA_HOME": str(tmp_path / "data-home")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=540)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "mlruns").exists()  # nothing went to a local store
    assert [p.name for p in (tmp_path / "data-home" / "anncore").iterdir()] == [f"optuna-{url.split('//')[1].replace(':', '-')}.db"]

    backend = tracking_server["backend"]  # read the server's own database directly
    for name in EXPERIMENT_NAMES:
        runs = runs_of(backend, name)
        # The sweep: its parent, one child per --quick trial, and the champion's retraining.
        expected = 1 + QUICK_TRIALS + 1 if name == "sweep" else 1 + STUDY_ARMS.get(name, 0)
        assert len(runs) == expected and {r.info.status for r in runs} == {"FINISHED"}, name
    [baseline] = runs_of(backend, "baseline")
    assert sorted(steps(backend, baseline, "test_acc")) == [1, 2]
    assert baseline.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = tracking_server["artifacts"]
    for path in ("history.csv", "confusion_matrix.csv", "sample_images.png"):
        [file] = stored.rglob(f"{baseline.info.run_id}/artifacts/{path}")
        assert file.stat().st_size > 0
    listing = requests.get(f"{url}/api/2.0/mlflow/artifacts/list", params={"run_id": baseline.info.run_id},
                           timeout=10).json()
    assert {"history.csv", "per_class_accuracy.csv"} <= {f["path"] for f in listing["files"]}
    logged = client_for(url).search_logged_models(experiment_ids=[baseline.info.experiment_id])
    assert [m.source_run_id for m in logged] == [baseline.info.run_id]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:  # the model's files went through the server too
        model = mlflow.pytorch.load_model(f"runs:/{baseline.info.run_id}/model", dst_path=str(tmp_path))
    finally:
        mlflow.set_tracking_uri(previous)
    assert tuple(model(torch.zeros(3, 784)).shape) == (3, 10)


class SilentServer:
    """A socket that accepts connections and never answers: a hung server."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@contextlib.contextmanager
def nothing_listening():
    yield f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("server", [nothing_listening, SilentServer], ids=["nothing-listening", "silent-listener"])
def test_server_that_is_down_is_a_clear_error_within_10_seconds(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    with server() as url:
        start = time.monotonic()
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", url])
        elapsed = time.monotonic() - start
    # A bound on a hang, not a benchmark: without the CLI's own 3 s check, MLflow's request timeout
    # (120 s) or its retries with backoff (about 2 min) decide; a CLI start on a loaded 2-core
    # machine took up to 18 s. 60 s keeps both apart with room.
    assert elapsed < 60.0, elapsed
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: tracking server {url} is not reachable (")
    assert "pass another --tracking-uri" in err
    assert list(tmp_path.iterdir()) == []


# --- 7. security ----------------------------------------------------------------------------------

SKIPPED_DIRS = {".venv", ".git", "mlruns", "data", "node_modules", "_output", ".pytest_cache", "build"}


def python_sources() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.py") if not SKIPPED_DIRS & set(p.relative_to(REPO).parts))


def dangerous_calls(source: str) -> list[str]:
    """Calls that could run or unpickle what a user typed: eval/exec, pickle/marshal loads, shells."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        dotted = f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        if name in ("eval", "exec", "__import__"):
            found.append(f"line {node.lineno}: {name}()")
        if dotted in ("builtins.eval", "builtins.exec", "pickle.loads", "pickle.load", "marshal.loads", "os.system",
                      "os.popen", "yaml.load", "yaml.unsafe_load", "dill.loads", "cloudpickle.loads"):
            found.append(f"line {node.lineno}: {dotted}()")
        if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
               for k in node.keywords):
            found.append(f"line {node.lineno}: shell=...")
    return found


def test_the_scanner_finds_what_it_looks_for():
    planted = ("x = eval(text)\nexec(code)\nimport pickle\npickle.loads(blob)\n"
               "subprocess.run(cmd, shell=True)\nmodel.eval()\n")
    assert dangerous_calls(planted) == ["line 1: eval()", "line 2: exec()", "line 4: pickle.loads()", "line 5: shell=..."]


def test_no_eval_exec_or_unpickling_in_the_project_sources():
    sources = python_sources()
    assert {p.relative_to(REPO).parts[:2] for p in sources} >= {
        ("anncore", "models.py"), ("experiments", "charts"), ("experiments", "tracking"), ("report", "reporting"), ("tests", "conftest.py"),
    }
    found = {}
    for path in sources:
        calls = dangerous_calls(path.read_text())
        if calls:
            found[str(path.relative_to(REPO))] = calls
    assert found == {}


def test_readme_mlflow_ui_binds_to_loopback():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", readme, flags=re.S)
    commands = [shlex.split(line) for block in blocks for line in block.splitlines()
                if re.search(r"\bmlflow (ui|server)\b", line)]
    assert commands, "README shows no mlflow ui command"
    for argv in commands:
        argv = argv[: argv.index("#")] if "#" in argv else argv
        assert "--host" in argv and argv[argv.index("--host") + 1] == "127.0.0.1", argv
        assert not any(a in ("0.0.0.0", "::") or a.startswith("0.0.0.0") for a in argv), argv


def test_logged_params_hold_no_paths_user_names_or_secrets(two_suites):
    env = two_suites["env"]
    secrets = {name: value for name, value in env.items() if SECRET_NAME.search(name) and len(value) >= 8}
    assert secrets[FAKE_SECRET_NAME] == FAKE_SECRET  # the check below has something to find
    home = str(Path.home())
    forbidden_paths = {str(two_suites["workdir"]), tempfile.gettempdir(), str(REPO)} | ({home} if home != "/" else set())
    user = getpass.getuser()
    token_like = re.compile(r"\b(ghp_|github_pat_|gho_|AKIA|ASIA|sk-|xox[abps]-|glpat-|hf_)[A-Za-z0-9_-]{8,}")
    runs = every_run(two_suites["uri"])
    assert len(runs) > 2 * len(EXPERIMENT_NAMES)
    checked = 0
    for run in runs:
        for key, value in run.data.params.items():
            where = (run.data.tags["anncore.experiment"], key, value)
            assert not any(path in value for path in forbidden_paths), where
            assert not value.startswith(("/", "~")), where
            assert not re.search(rf"\b{re.escape(user)}\b", value), where
            assert not any(secret in value for secret in secrets.values()), where
            assert not token_like.search(value), where
            checked += 1
    assert checked > 500
