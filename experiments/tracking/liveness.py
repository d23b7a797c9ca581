"""Where a run runs and whether it still does: no run left RUNNING after its process died.

Every run is tagged with its host, pid and the process's start time (tags, not params: they
are machine-specific) and a heartbeat, ``anncore.heartbeat`` (Unix time in ms), set when the
run starts and refreshed with every metrics write (:class:`~experiments.tracking.runs.EpochMetricsLogger`).
Runs written together (the search's stacked trials) share one :func:`heartbeat_thread`, which
refreshes those not written for a while, rather than a thread per run.

A process killed with SIGKILL (or a machine switched off) cannot end its run. :func:`cleanup`
finds such ghosts among the RUNNING runs of the ``anncore-*`` experiments and ends them KILLED,
keeping what they logged, with ``anncore.killed_reason`` saying why:

- same host: the recorded process is gone (no such pid, or a pid reused by a later process);
- other hosts (unless ``same_host_only``): the heartbeat is older than ``stale_after_s``
  (a study's parent run counts its children's heartbeats as its own).
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, TextIO

from experiments.tracking import store

if TYPE_CHECKING:
    import mlflow

HOST_TAG, PID_TAG, STARTED_TAG = "anncore.host", "anncore.pid", "anncore.process_start"
HEARTBEAT_TAG, REASON_TAG = "anncore.heartbeat", "anncore.killed_reason"
DEFAULT_STALE_AFTER_S = 900.0
# create_time is rounded differently by different readers; a reused pid starts much later.
START_TIME_TOLERANCE_S = 2.0


def this_host() -> str:
    return socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """Unix time at which process ``pid`` started, or None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return float("nan")  # exists, start unknown


def heartbeat_value() -> str:
    return str(int(time.time() * 1000))


def process_tags() -> dict[str, str]:
    """This process's identity and a first heartbeat, for a new run's tags."""
    started = process_start_time(os.getpid())
    return {
        HOST_TAG: this_host(),
        PID_TAG: str(os.getpid()),
        STARTED_TAG: f"{started:.2f}",
        HEARTBEAT_TAG: heartbeat_value(),
    }


@contextmanager
def heartbeat_thread(beat: Callable[[], None], interval_s: float) -> Iterator[None]:
    """Call ``beat()`` every ``interval_s`` seconds from one daemon thread while the block runs.

    ``beat`` must not raise (an exception ends the thread: the next write's heartbeat remains).
    The thread is stopped and joined when the block ends, before the caller ends its runs.
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            beat()

    thread = threading.Thread(target=loop, name="anncore-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def process_alive(pid: int, started: float) -> bool:
    """True when ``pid`` runs and is the process that started at ``started`` (not a reused pid)."""
    now_started = process_start_time(pid)
    if now_started is None:
        return False
    if now_started != now_started:  # NaN: cannot tell, assume alive
        return True
    return abs(now_started - started) <= START_TIME_TOLERANCE_S


@dataclass
class Ghost:
    """A RUNNING run found dead, and why."""

    run_id: str
    experiment: str
    reason: str
    refused: str | None = None  # why it could not be ended (another account's run), when it could not


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def ghost_reason(tags: dict[str, str], latest_heartbeat_ms: float | None, *, host: str, now_s: float,
                 stale_after_s: float, same_host_only: bool) -> str | None:
    """Why a RUNNING run with these tags is a ghost, or None when it may still be alive."""
    pid, started = _float(tags.get(PID_TAG)), _float(tags.get(STARTED_TAG))
    if tags.get(HOST_TAG) == host and pid is not None and started is not None:
        if not process_alive(int(pid), started):
            return f"process {int(pid)} on {host} is gone (found by cleanup)"
        return None
    if same_host_only or latest_heartbeat_ms is None:
        return None  # another host (or a run from before heartbeats): only a heartbeat can tell
    silent_s = now_s - latest_heartbeat_ms / 1000
    if silent_s > stale_after_s:
        where = tags.get(HOST_TAG, "an unknown host")
        return f"no heartbeat from {where} for {silent_s:.0f} s (more than {stale_after_s:.0f} s; found by cleanup)"
    return None


def find_ghosts(client: mlflow.MlflowClient, *, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                same_host_only: bool = False) -> list[Ghost]:
    """The RUNNING runs of the ``anncore-*`` experiments whose process is gone."""
    experiments = {e.experiment_id: e.name for e in client.search_experiments(max_results=10_000)
                   if e.name.startswith(store.EXPERIMENT_PREFIX)}
    if not experiments:
        return []
    running = client.search_runs(list(experiments), "attributes.status = 'RUNNING'", max_results=50_000)
    heartbeats: dict[str, float] = {}
    for run in running:
        beat = _float(run.data.tags.get(HEARTBEAT_TAG))
        parent = run.data.tags.get("mlflow.parentRunId")
        for run_id in (run.info.run_id, parent):
            if run_id and beat is not None:
                heartbeats[run_id] = max(heartbeats.get(run_id, 0.0), beat)
    host, now = this_host(), time.time()
    ghosts = []
    for run in running:
        reason = ghost_reason(run.data.tags, heartbeats.get(run.info.run_id), host=host, now_s=now,
                              stale_after_s=stale_after_s, same_host_only=same_host_only)
        if reason is not None:
            ghosts.append(Ghost(run.info.run_id, experiments[run.info.experiment_id], reason))
    return ghosts


def cleanup(client: mlflow.MlflowClient | None = None, *, stale_after_s: float = DEFAULT_STALE_AFTER_S,
            same_host_only: bool = False, dry_run: bool = False) -> list[Ghost]:
    """End every ghost run KILLED with ``anncore.killed_reason``; its params, metrics and artifacts stay.

    A run this account may not change (another student's, on a class server) does not stop the
    others: it is returned with :attr:`Ghost.refused` saying why.

    Returns
    -------
    list of Ghost
        The runs found (and, unless ``dry_run``, ended, or refused).
    """
    import mlflow

    client = client or mlflow.MlflowClient()
    ghosts = find_ghosts(client, stale_after_s=stale_after_s, same_host_only=same_host_only)
    if not dry_run:
        for ghost in ghosts:
            try:
                store.with_retry(client.set_tag, ghost.run_id, REASON_TAG, ghost.reason)
                store.with_retry(client.set_terminated, ghost.run_id, "KILLED")
            except Exception as error:  # noqa: BLE001 - MlflowException (403), RestException; one line each
                text = str(error)
                ghost.refused = ("another account's run (HTTP 403); its owner or the teacher can end it"
                                 if "403" in text or "PERMISSION_DENIED" in text else
                                 f"{type(error).__name__}: {store.first_line(error)}")
    return ghosts


def stale_after_seconds(text: str) -> float:
    """``--stale-after``: a number of seconds of at least 1."""
    import math

    accepted = "accepted: a number of seconds of at least 1, such as 900"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; {accepted}") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
    return value


def cleanup_command(args: argparse.Namespace, uri: str) -> int:
    """``python -m experiments cleanup``: print each ghost run and end it KILLED (unless ``--dry-run``).

    Returns 1 when some ghost could not be ended (each listed with why), else 0.
    """
    import sys

    store.connect(uri)
    ghosts = cleanup(stale_after_s=args.stale_after, same_host_only=args.this_host_only, dry_run=args.dry_run)
    verb = "would mark" if args.dry_run else "marked"
    refused = [ghost for ghost in ghosts if ghost.refused]
    for ghost in ghosts:
        if not ghost.refused:
            print(f"{verb} KILLED: run {ghost.run_id} ({ghost.experiment}): {ghost.reason}")
    for ghost in refused:
        print(f"cannot end: run {ghost.run_id} ({ghost.experiment}): {ghost.refused}", file=sys.stderr)
    print(f"{len(ghosts) - len(refused)} ghost run(s) {'found' if args.dry_run else 'ended'}"
          + (f", {len(refused)} left to their owners" if refused else ""))
    return 1 if refused else 0


def end_ghosts_of_this_host(stream: TextIO | None = None) -> list[Ghost]:
    """What the suite does when it starts: end KILLED this host's runs whose process is gone.

    Never stops the suite: a run it may not change (another account's, on a shared machine)
    or a failing store is left for ``python -m experiments cleanup``.
    """
    import sys

    import mlflow


    stream = stream or sys.stderr
    client = mlflow.MlflowClient()
    try:
        ghosts = find_ghosts(client, same_host_only=True)
    except Exception:  # noqa: BLE001 - cleanup is a courtesy, the suite's runs matter more
        return []
    ended = []
    for ghost in ghosts:
        try:
            store.with_retry(client.set_tag, ghost.run_id, REASON_TAG, ghost.reason)
            store.with_retry(client.set_terminated, ghost.run_id, "KILLED")
        except Exception:  # noqa: BLE001
            continue
        ended.append(ghost)
        print(f"ended ghost run {ghost.run_id} ({ghost.experiment}) KILLED: {ghost.reason}", file=stream)
    return ended
