"""Run a list of experiments one after another, survive failures, and summarise.

Before any run starts, everything a user could have got wrong is checked (store, server,
device, dataset), so a bad command line never leaves a half-made run. Then each experiment
runs; one that fails is recorded (its run is FAILED) and the suite goes on. Ctrl-C or SIGTERM
ends the current run as KILLED and stops the suite. A summary table closes every invocation.

Exit status: 0 all finished, 1 something failed, 130 interrupted (SIGINT), 143 terminated
(SIGTERM); bad input is reported by ``main`` with status 2 before this module runs anything.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Sequence

from experiments.tracking import datasets, liveness, store
from experiments.tracking.signals import Terminated, sigterm_raises
from experiments.settings import RunSettings, UserInputError
from experiments.studies import get_experiment

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 130, 143


@dataclass
class SuiteRow:
    """One line of the summary table."""

    experiment: str
    status: str
    run_id: str
    wall_time_s: float
    key_metric: str
    error: str = ""


def preflight(names: Sequence[str], settings: RunSettings, uri: str) -> None:
    """Check the device, the dataset (when needed) and the store before any run starts.

    Raises
    ------
    UserInputError
        With a one-line message naming the bad value and what is accepted.
    """
    from anncore.trainer import resolve_device

    try:
        resolve_device(settings.device)
    except ValueError as error:
        raise UserInputError(f"--device {settings.device}: {error}") from None
    if any(get_experiment(name).NEEDS_FASHION_MNIST for name in names):
        datasets.load(settings)
    for name in names:  # an experiment's own checks (the sweep's Optuna storage), before the store is made
        check = getattr(get_experiment(name), "preflight", None)
        if check is not None:
            check(settings, uri)
    store.connect(uri)
    store.check_experiments_are_yours(list(names))


def run_suite(names: Sequence[str], settings: RunSettings, uri: str) -> int:
    """Run experiments ``names`` in order into the store at ``uri``; print a summary; return the exit status."""
    preflight(names, settings, uri)
    liveness.end_ghosts_of_this_host()  # runs left RUNNING by a process of this host that died
    rows: list[SuiteRow] = []
    status = EXIT_OK
    with sigterm_raises():
        for position, name in enumerate(names, start=1):
            print(f"[{position}/{len(names)}] {name}", flush=True)
            row, interrupted = run_one(name, settings)
            rows.append(row)
            if row.status == "FAILED":
                print(f"error: experiment {name} failed: {row.error}", file=sys.stderr, flush=True)
                status = EXIT_FAILED
            if interrupted is not None:
                status = EXIT_TERMINATED if isinstance(interrupted, Terminated) else EXIT_INTERRUPTED
                print(f"interrupted ({type(interrupted).__name__}); stopping the suite", file=sys.stderr)
                break
    print_summary(rows)
    return status


def run_one(name: str, settings: RunSettings) -> tuple[SuiteRow, KeyboardInterrupt | None]:
    """Run one experiment; return its summary row and the interruption that stopped it, if any."""
    start = time.perf_counter()
    try:
        outcome = get_experiment(name).run(settings)
    except KeyboardInterrupt as interruption:
        run_id = getattr(interruption, "anncore_run_id", "")
        return SuiteRow(name, "KILLED", run_id, time.perf_counter() - start, "", "interrupted"), interruption
    except Exception as error:  # noqa: BLE001 - one failed experiment must not stop the suite
        run_id = getattr(error, "anncore_run_id", "")
        message = f"{type(error).__name__}: {error}"
        return SuiteRow(name, "FAILED", run_id, time.perf_counter() - start, "", message), None
    metric = f"{outcome.metric} = {outcome.value:.6g}"
    return SuiteRow(name, "FINISHED", outcome.run_id, time.perf_counter() - start, metric), None


def print_summary(rows: Sequence[SuiteRow], stream=None) -> None:
    """Print the summary table (experiment, status, run id, wall time, key metric) and the failures."""
    import pandas as pd

    stream = stream or sys.stdout
    if not rows:
        return
    table = pd.DataFrame(
        {
            "experiment": [r.experiment for r in rows],
            "status": [r.status for r in rows],
            "run_id": [r.run_id for r in rows],
            "wall_time_s": [round(r.wall_time_s, 1) for r in rows],
            "key_metric": [r.key_metric or r.error[:60] for r in rows],
        }
    )
    print("\nSummary", file=stream)
    print(table.to_string(index=False), file=stream)
    failed = [r for r in rows if r.status == "FAILED"]
    if failed:
        print(f"\n{len(failed)} of {len(rows)} experiment(s) failed:", file=stream)
        for row in failed:
            print(f"  {row.experiment} (run {row.run_id or 'not started'}): {row.error}", file=stream)
    print_ui_links(rows, stream)
    stream.flush()


def print_ui_links(rows: Sequence[SuiteRow], stream=None) -> None:
    """Print, per experiment that has a run, the MLflow UI link to its runs ("Model training" view).

    For a tracking server the links point at it; for a local store at ``mlflow ui``'s default
    address, with the command that starts it.
    """
    import mlflow

    stream = stream or sys.stdout
    uri = mlflow.get_tracking_uri()
    client = mlflow.MlflowClient()
    links = []
    for row in rows:
        if not row.run_id:
            continue
        try:
            experiment_id = client.get_run(row.run_id).info.experiment_id
        except Exception:  # noqa: BLE001 - a summary line must not fail the suite
            continue
        if (row.experiment, experiment_id) not in links:
            links.append((row.experiment, experiment_id))
    if not links:
        return
    if uri.startswith("http"):
        ui_url = uri
        print(f"\nRuns in the MLflow UI of {uri}:", file=stream)
    else:
        ui_url = store.DEFAULT_UI_URL
        print(f"\nRuns in the MLflow UI (start it with: mlflow ui --backend-store-uri {uri}):", file=stream)
    width = max(len(name) for name, _ in links)
    for name, experiment_id in links:
        print(f"  {name:<{width}}  {store.ui_runs_url(experiment_id, ui_url)}", file=stream)
