"""Stress Ctrl-C and SIGTERM: signal `python -m experiments run ...` at many random moments.

Each trial starts a study in a fresh SQLite store, sends SIGINT or SIGTERM after a random delay
(so signals land in start-up, run creation, params, training, metric flushes, artifact and chart
writes and the end of runs), and measures the time from the signal to the process's exit. Some
trials send a second SIGINT shortly after the first ("Ctrl-C twice") and measure the time from
the second one. Afterwards the store is read with sqlite3 (not MLflow) and every run must be
FINISHED or KILLED, and every run of an interrupted study KILLED or FINISHED, none RUNNING
(a forced second Ctrl-C may leave runs RUNNING by design; those trials are counted apart).

A process still alive ``--hang-after`` seconds after its signal gets SIGUSR1, which makes
``python -m experiments`` print every thread's Python stack (faulthandler), and the dump is
printed here.

Usage::

    .venv/bin/python scripts/stress_signals.py --signals 40
    .venv/bin/python scripts/stress_signals.py --signals 30 --data-dir ../shared/data --cpu-load 2

Prints one line per trial and a summary: the worst and median time to exit per kind, and
whether every interrupted run ended KILLED. Exit status 1 if any trial hung or left a run
RUNNING or wrongly marked.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LONG = ["run", "depth", "simple_ann", "--epochs", "10000"]  # trains until signalled
SHORT = ["run", "depth", "--quick", "--epochs", "3"]  # ends by itself: signals land in artifact writes too
EXPECTED_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Trial:
    """What one signalled process did."""

    kind: str
    delay_s: float
    status: int | None
    exit_s: float  # from the (last) signal to the exit
    ended_s: float = 0.0  # from the (last) signal until no run in the store is RUNNING
    runs: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def make_template(folder: Path) -> Path:
    """An initialised, empty MLflow SQLite store (creating the schema takes seconds, copying does not)."""
    import mlflow

    path = folder / "template.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def run_statuses(database: Path) -> dict[str, str]:
    """run id -> status, read straight from the store's ``runs`` table."""
    if not database.exists():
        return {}
    with sqlite3.connect(database, timeout=30) as connection:
        return dict(connection.execute("SELECT run_uuid, status FROM runs"))


def wait_for_metrics(database: Path, process: subprocess.Popen, rounds: int) -> None:
    """Return just after the ``rounds``-th metrics write of the run is readable (polled as the test does)."""
    seen, count = 0, 0
    while process.poll() is None:
        try:
            with sqlite3.connect(database, timeout=30) as connection:
                count = connection.execute("SELECT COUNT(*) FROM metrics WHERE key = 'test_acc'").fetchone()[0]
        except sqlite3.OperationalError:
            pass
        if count > seen:
            seen, rounds = count, rounds - 1
            if rounds == 0:
                return
        time.sleep(0.01)


def wait_for_a_run(database: Path, process: subprocess.Popen) -> None:
    while process.poll() is None and not run_statuses(database):
        time.sleep(0.05)


def time_until_no_run_is_running(database: Path, process: subprocess.Popen, sent: float, limit: float,
                                 exited: list[float]) -> float:
    """Seconds from ``sent`` until the store holds no RUNNING run (the runs are ended), polled every 50 ms.

    The moment the process is first seen ended is appended to ``exited``; a run a forced exit left
    RUNNING is given up 2 s after the signal.
    """
    while time.monotonic() - sent < limit:
        if not exited and process.poll() is not None:
            exited.append(time.monotonic())
        try:
            if "RUNNING" not in run_statuses(database).values():
                return time.monotonic() - sent
        except sqlite3.OperationalError:
            pass
        if exited and time.monotonic() - sent > 2:
            break
        time.sleep(0.05)
    return time.monotonic() - sent


def busy(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def one_trial(number: int, kind: str, args: argparse.Namespace, template: Path, work: Path,
              rng: random.Random) -> Trial:
    folder = work / f"trial-{number}"
    folder.mkdir()
    database = folder / "mlflow.db"
    shutil.copy(template, database)
    signum = signal.SIGTERM if kind.endswith("SIGTERM") else signal.SIGINT
    command = [sys.executable, "-m", "experiments", *(SHORT if kind.startswith("short") else LONG),
               "--no-progress", "--device", "cpu", "--data-dir", str(args.data_dir),
               "--tracking-uri", f"sqlite:///{database}"]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    # sitecustomize registers the SIGUSR1 stack dump in any checkout (--code), before the CLI starts
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (args.code, work / "site") if p)
    delay = rng.uniform(0.0, args.short_window if kind.startswith("short") else args.long_window)
    log = open(folder / "stderr.txt", "w+")
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=folder, env={**env, "PYTHONUNBUFFERED": "1"},
                               stdout=subprocess.DEVNULL, stderr=log)
    if kind.startswith("flush"):  # as the regression test does: right after an epoch reaches the store
        wait_for_metrics(database, process, rounds=rng.randint(1, 3))
        delay = time.monotonic() - start + rng.uniform(0.0, 0.05)
        time.sleep(delay - (time.monotonic() - start))
    elif kind.startswith(("long", "double")):  # while the study trains: from its first run on
        wait_for_a_run(database, process)
        time.sleep(delay)
        delay = time.monotonic() - start
    else:
        time.sleep(delay)
    sent = time.monotonic()
    process.send_signal(signum)
    if kind.startswith("double"):
        time.sleep(args.second_after)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
    problem = ""
    exited: list[float] = []
    ended_s = time_until_no_run_is_running(database, process, sent, args.hang_after, exited)
    if args.dump_after is not None:  # diagnostics: what is it doing this long after the signal?
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=args.dump_after)
        if process.poll() is None:
            process.send_signal(signal.SIGUSR1)
    try:
        process.wait(timeout=args.hang_after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack to stderr
        time.sleep(2)
        process.kill()
        process.wait()
        log.seek(0)
        problem = f"HUNG > {args.hang_after} s; stacks:\n{log.read()[-6000:]}"
    exit_s = (exited[0] if exited else time.monotonic()) - sent
    log.seek(0)
    stderr = log.read()
    log.close()
    runs = run_statuses(database)
    status = process.returncode
    if not problem:
        problem = check(kind, signum, status, runs, stderr)
    return Trial(kind, delay, status, exit_s, ended_s, runs, problem)


def check(kind: str, signum: int, status: int, runs: dict[str, str], stderr: str) -> str:
    """'' if the process and the store ended as they should, else what is wrong."""
    if "Traceback" in stderr:
        return "traceback on stderr:\n" + stderr[-3000:]
    statuses = set(runs.values())
    if status == -signum and (not runs or statuses == {"FINISHED"}):
        return ""  # before the handlers exist (imports) or after the study ended (interpreter exit)
    if kind.startswith("double"):
        return "" if status in (0, 130, -signal.SIGINT) else f"exit status {status} after two SIGINTs"
    if status == 0:  # the study finished before the signal arrived
        return "" if statuses <= {"FINISHED"} else f"exit 0 but runs {runs}"
    if status != EXPECTED_STATUS[signum]:
        return f"exit status {status}, expected {EXPECTED_STATUS[signum]}; stderr: {stderr[-1500:]}"
    if not statuses <= {"FINISHED", "KILLED"}:
        return f"runs left {sorted(statuses - {'FINISHED', 'KILLED'})}: {runs}"
    if runs and "KILLED" not in statuses:
        return f"interrupted, yet no run is KILLED: {runs}"
    return ""


def summarise(trials: list[Trial]) -> bool:
    print("\nkind            n  worst_runs_ended_s  worst_exit_s  median_exit_s  all_ended_KILLED_or_FINISHED")
    ok = True
    for kind in sorted({t.kind for t in trials}):
        group = [t for t in trials if t.kind == kind]
        times = [t.exit_s for t in group]
        clean = all(not t.problem for t in group)
        ok = ok and clean
        ended = max(t.ended_s for t in group)
        print(f"{kind:14} {len(group):2}  {ended:18.2f}  {max(times):12.2f}  {statistics.median(times):13.2f}  {clean}")
    interrupted = [t for t in trials if t.status in (130, 143) and not t.kind.startswith("double")]
    killed = sum("KILLED" in t.runs.values() for t in interrupted)
    print(f"\nsignals sent: {sum(2 if t.kind.startswith('double') else 1 for t in trials)} in {len(trials)} trials; "
          f"interrupted studies: {len(interrupted)}, with a KILLED run: {killed}; "
          f"worst time until no run was RUNNING: {max(t.ended_s for t in trials):.2f} s; "
          f"worst time to exit: {max(t.exit_s for t in trials):.2f} s")
    for t in trials:
        if t.problem:
            print(f"\nPROBLEM in {t.kind} (signal after {t.delay_s:.2f} s): {t.problem}")
    return ok


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=40, help="number of trials (default 40)")
    parser.add_argument("--data-dir", type=Path, help="FashionMNIST root (default: tiny IDX files written here)")
    parser.add_argument("--long-window", type=float, default=8.0,
                        help="long runs and double: signal within this many s of the first run")
    parser.add_argument("--short-window", type=float, default=14.0, help="short studies: signal within this many s")
    parser.add_argument("--second-after", type=float, default=0.3, help="double: seconds between the two SIGINTs")
    parser.add_argument("--hang-after", type=float, default=30.0, help="dump the stacks and kill after this many s")
    parser.add_argument("--cpu-load", type=int, default=0, help="busy processes to run alongside")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump-after", type=float, help="print the stacks (SIGUSR1) this many s after the signal")
    parser.add_argument("--kinds", default="long-SIGINT,long-SIGTERM,flush-SIGINT,flush-SIGTERM,short-SIGINT,"
                        "short-SIGTERM,double-SIGINT", help="comma-separated trial kinds, taken in turn")
    parser.add_argument("--code", type=Path, help="run the experiments package from this checkout (PYTHONPATH)")
    parser.add_argument("--keep", type=Path, help="keep each trial's store and stderr under this folder")
    return parser.parse_args()


def main() -> int:
    args = parse()
    rng = random.Random(args.seed)
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory(prefix="anncore-stress-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.data_dir is None:
            from tests.idx_files import write_fashion_mnist

            args.data_dir = write_fashion_mnist(work / "data")
        template = make_template(work)
        (work / "site").mkdir(exist_ok=True)
        (work / "site" / "sitecustomize.py").write_text(
            "import faulthandler, signal, sys\nfaulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)\n")
        load = [multiprocessing.Process(target=busy, args=(time.monotonic() + 36_000,), daemon=True)
                for _ in range(args.cpu_load)]
        for worker in load:
            worker.start()
        trials = []
        try:
            for number in range(args.signals):
                kind = kinds[number % len(kinds)]
                trial = one_trial(number, kind, args, template, work, rng)
                trials.append(trial)
                mark = "ok" if not trial.problem else "PROBLEM"
                print(f"{number + 1:3}/{args.signals} {kind:14} signal at {trial.delay_s:5.2f} s  exit {trial.status}"
                      f"  after {trial.exit_s:5.2f} s (runs ended {trial.ended_s:5.2f} s)  runs {sorted(trial.runs.values())}  {mark}", flush=True)
        finally:
            for worker in load:
                worker.terminate()
    return 0 if summarise(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
