"""Load test: N students at once against one tracking server (``python -m experiments.server.load``).

Each client is a ``python -m experiments run ... --quick`` process (see :mod:`load_client`) that
times its HTTP calls and records the ids of the runs the server acknowledged. Afterwards every
acknowledged run is looked up on the server: runs expected (acknowledged), found, lost, their
statuses, wall time, runs per second, and the p50/p95 latency of the clients' calls.

Examples::

    python -m experiments.server.load --data-dir ../shared/data                      # 8 clients, both backends
    python -m experiments.server.load --clients 16 --backend postgresql --data-dir ../shared/data
    python -m experiments.server.load --tracking-uri http://lab:5000 --clients 4 --experiments baseline
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

from experiments.arguments import OneLineArgumentParser, command_main, ranged_int
from experiments.cli import experiment_name
from experiments.settings import UserInputError
from experiments.server.class_server import stop_process_group

DEFAULT_CLIENTS = 8
MAX_CLIENTS = 256
CLIENT_TIMEOUT_S = 3600


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _client_environment() -> dict[str, str]:
    drop = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")
    # One torch thread per client: N clients on a few cores would otherwise oversubscribe them.
    return {"OMP_NUM_THREADS": "1", **{k: v for k, v in os.environ.items() if k not in drop}, "PYTHONUNBUFFERED": "1"}


def run_clients(url: str, clients: int, experiments: Sequence[str], data_dir: Path, folder: Path) -> dict:
    """Start ``clients`` suites at once against ``url``; wait for all; return what they recorded."""
    processes = []
    start = time.perf_counter()
    for index in range(clients):
        work = folder / f"client-{index}"
        work.mkdir(parents=True)
        command = [sys.executable, "-m", "experiments.server.load_client", str(work / "record.json"),
                   "run", *experiments, "--quick", "--no-progress", "--device", "cpu",
                   "--data-dir", str(data_dir), "--tracking-uri", url]
        if "all" in experiments or "sweep" in experiments:  # the sweep's Optuna study: one per client
            command += ["--storage", f"sqlite:///{work / 'optuna.db'}"]
        with open(work / "output.log", "w") as log:
            processes.append(subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                                              env=_client_environment()))
    for process in processes:
        try:
            process.wait(timeout=CLIENT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    wall = time.perf_counter() - start
    records = []
    for index, process in enumerate(processes):
        path = folder / f"client-{index}" / "record.json"
        record = json.loads(path.read_text()) if path.is_file() else {"status": process.returncode, "calls": [],
                                                                      "created_runs": []}
        record["returncode"] = process.returncode
        record["log_tail"] = (folder / f"client-{index}" / "output.log").read_text(errors="replace")[-6000:]
        records.append(record)
    return {"wall_s": wall, "records": records}


def check_runs(url: str, run_ids: Sequence[str]) -> Counter:
    """Status of each acknowledged run on the server (``LOST`` when the server does not have it)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(url)
    statuses: Counter = Counter()
    for run_id in run_ids:
        try:
            statuses[client.get_run(run_id).info.status] += 1
        except MlflowException:
            statuses["LOST"] += 1
    return statuses


def summarise(label: str, url: str, clients: int, outcome: dict) -> dict:
    """Figures of one load run (see the module docstring)."""
    records = outcome["records"]
    created = [run_id for record in records for run_id in record["created_runs"]]
    statuses = check_runs(url, created)
    api = [call for record in records for call in record["calls"] if "/api/" in call[1]]
    writes = [call[2] for call in api if call[0] == "POST"]
    return {
        "backend": label,
        "clients": clients,
        "clients_ok": sum(record["returncode"] == 0 for record in records),
        "runs_expected": len(created),
        "runs_found": len(created) - statuses.get("LOST", 0),
        "runs_lost": statuses.get("LOST", 0),
        "statuses": dict(sorted(statuses.items())),
        "wall_s": outcome["wall_s"],
        "runs_per_s": len(created) / outcome["wall_s"] if outcome["wall_s"] else float("nan"),
        "api_calls": len(api),
        "write_p50_ms": 1000 * percentile(writes, 0.50),
        "write_p95_ms": 1000 * percentile(writes, 0.95),
        "call_p50_ms": 1000 * percentile([call[2] for call in api], 0.50),
        "call_p95_ms": 1000 * percentile([call[2] for call in api], 0.95),
        "failed_clients": [f"exit status {record['returncode']} (command returned {record.get('status')}):\n{record['log_tail']}"
                           for record in records if record["returncode"] != 0],
    }


def print_result(result: dict, stream=None) -> None:
    stream = stream or sys.stdout
    print(f"{result['backend']}: {result['clients']} clients ({result['clients_ok']} exited 0), "
          f"runs expected {result['runs_expected']}, found {result['runs_found']}, lost {result['runs_lost']}, "
          f"statuses {result['statuses']}", file=stream)
    print(f"  wall {result['wall_s']:.1f} s, {result['runs_per_s']:.2f} runs/s, {result['api_calls']} API calls; "
          f"writes p50 {result['write_p50_ms']:.0f} ms, p95 {result['write_p95_ms']:.0f} ms; "
          f"all calls p50 {result['call_p50_ms']:.0f} ms, p95 {result['call_p95_ms']:.0f} ms; "
          f"load average {result['load_average_before']:.1f} before, {result['load_average_after']:.1f} after",
          file=stream)
    for tail in result["failed_clients"][:2]:
        lines = tail.strip().splitlines() or ["?"]
        errors = [line for line in lines if line.startswith("error:") or "FAILED" in line] or lines[-1:]
        print("  a failed client said: " + " | ".join(line.strip() for line in errors[-3:]), file=stream)
    stream.flush()


def _temporary_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="anncore-load-"))
    folder.chmod(0o755)  # PostgreSQL runs as the postgres user when this process is root
    return folder


@contextlib.contextmanager
def postgresql_server(folder: Path, workers: int) -> Iterator[str]:
    """A class server (PostgreSQL, no accounts) in ``folder`` on free loopback ports; stopped afterwards."""
    from experiments.server import class_server

    try:
        # A throwaway server: as root it runs as root when this Python is closed to the service user.
        config = class_server.start(folder / "server", port=class_server.free_port(), workers=workers, auth=False,
                                    as_root=class_server.closed_to_others() is not None)
        yield config.url
    finally:
        with contextlib.suppress(UserInputError):
            class_server.stop(folder / "server")


@contextlib.contextmanager
def sqlite_server(folder: Path, workers: int) -> Iterator[str]:
    """``mlflow server`` over a new SQLite file in ``folder``, same options otherwise; stopped afterwards."""

    from experiments.server import class_server

    port = class_server.free_port()
    (folder / "sqlite").mkdir()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
               f"sqlite:///{folder / 'sqlite' / 'mlflow.db'}", "--serve-artifacts", "--artifacts-destination",
               str(folder / "sqlite" / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    with open(folder / "sqlite" / "mlflow.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**_client_environment(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + class_server.STARTUP_TIMEOUT_S
        while not class_server._health(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise UserInputError(f"the SQLite-backed mlflow server did not start (see {folder}/sqlite/mlflow.log)")
            time.sleep(0.5)
        yield url
    finally:
        stop_process_group(process, timeout_s=30)


def load_test(url: str, label: str, clients: int, experiments: Sequence[str], data_dir: Path) -> dict:
    """Run the clients against ``url`` and return the summary (see :func:`summarise`)."""
    before = os.getloadavg()[0]  # the machine's own load, which shares the CPUs with the clients
    with tempfile.TemporaryDirectory(prefix="anncore-load-clients-") as folder:
        outcome = run_clients(url, clients, experiments, data_dir, Path(folder))
    result = summarise(label, url, clients, outcome)
    result["load_average_before"], result["load_average_after"] = before, os.getloadavg()[0]
    return result


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m experiments.server.load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=ranged_int(1, MAX_CLIENTS, f"accepted: 1 to {MAX_CLIENTS}"),
                        default=DEFAULT_CLIENTS, help=f"concurrent clients (default {DEFAULT_CLIENTS})")
    parser.add_argument("--experiments", nargs="+", type=experiment_name, default=["all"], metavar="NAME",
                        help="what each client runs with --quick (default: all)")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding FashionMNIST/raw")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--tracking-uri", help="load this running server (credentials from $MLFLOW_TRACKING_*)")
    target.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both",
                        help="start a temporary server of this kind (default: both, one after the other)")
    parser.add_argument("--workers", type=int, default=4, help="workers of the temporary servers (default 4)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the load test from the command line; bad input is one ``error:`` line and exit status 2."""
    return command_main(build_parser().parse_args, run_load_tests, argv)


def run_load_tests(args: argparse.Namespace) -> int:
    """Load the server(s) ``args`` name; 0 when no run was lost and every client succeeded."""
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
    results = []
    if args.tracking_uri:
        results.append(load_test(args.tracking_uri, args.tracking_uri, args.clients, args.experiments, args.data_dir))
        print_result(results[-1])
    for backend in ("postgresql", "sqlite") if not args.tracking_uri and args.backend == "both" else (
            [args.backend] if not args.tracking_uri else []):
        folder = _temporary_folder()
        server = postgresql_server if backend == "postgresql" else sqlite_server
        try:
            with server(folder, args.workers) as url:
                results.append(load_test(url, backend, args.clients, args.experiments, args.data_dir))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print_result(results[-1])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["runs_lost"] == 0 and r["clients_ok"] == r["clients"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
