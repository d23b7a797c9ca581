"""One MLflow run from start to a definite end: FINISHED, FAILED or KILLED, never left RUNNING.

:func:`tracked_run` starts a run with the anncore tags and the common params, yields it, and
ends it according to how the body ended:

- normally: ``FINISHED``;
- with an exception: ``FAILED``, tag ``anncore.error = "<ExcType>: message"`` and the
  traceback as ``error.txt``, keeping everything logged before; the exception propagates;
- with ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM through the suite's handler): ``KILLED``.

:func:`definite_end` is that ending on its own, for a run started another way (the search's
parent and trial runs), and :func:`end_run` ends a run with a given status; they are the only
ways a run of the suite ends. :func:`run_tags` are the tags every new run starts with, the
liveness tags (host, pid, process start, heartbeat) included.

:class:`EpochMetricsLogger` is the trainer callback that collects the epochs' metrics (step =
epoch) and writes them in batches: every few seconds while training, and once at the end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Mapping

from experiments.settings import INVOCATION_TAG, RunSettings
from experiments.tracking import liveness, store
from experiments.tracking.provenance import git_commit, package_versions

if TYPE_CHECKING:
    import mlflow
    from torch import nn

MAX_TAG_LENGTH = 5000
METRICS_FLUSH_EVERY_S = 5.0  # EpochMetricsLogger: least time between two writes while training...
MAX_METRICS_PER_WRITE = 1000  # ...unless this many are waiting (MLflow's limit for one log_batch call)


def common_params(settings: RunSettings, seed: int | None = None) -> dict[str, object]:
    """Params every run logs: seed(s), device, quick, package versions and the git commit."""
    from anncore.trainer import resolve_device

    params: dict[str, object] = {
        "seed": settings.seed if seed is None else seed,
        "seeds": ",".join(map(str, settings.seeds)),
        "device": str(resolve_device(settings.device)),
        "quick": settings.quick,
        **package_versions(),
    }
    commit = git_commit()
    if commit:
        params["git_commit"] = commit
    return params


def run_tags(settings: RunSettings, experiment: str, role: str, arm: str | None, seed: int | None) -> dict[str, str]:
    """The tags a new run of the suite starts with: experiment, role, invocation, arm, seed, rerun and liveness."""
    tags = {**liveness.process_tags(), "anncore.experiment": experiment, "anncore.role": role,
            INVOCATION_TAG: settings.invocation.to_json()}
    if arm is not None:
        tags["anncore.arm"] = arm
    if seed is not None and role == "child":
        tags["anncore.seed"] = str(seed)
    if settings.provenance.rerun_of:
        tags["anncore.rerun_of"] = settings.provenance.rerun_of
    if settings.provenance.project_run_id:
        tags["anncore.project_run_id"] = settings.provenance.project_run_id
    return tags


def log_params(params: Mapping[str, object]) -> None:
    """Log params in one call (retried while SQLite is locked); booleans as ``true``/``false``."""
    import mlflow

    clean = {key: (str(value).lower() if isinstance(value, bool) else str(value)) for key, value in params.items()}
    store.with_retry(mlflow.log_params, clean)


def finite_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` as floats, without the NaN values (e.g. a target never reached)."""
    return {key: float(value) for key, value in metrics.items() if not math.isnan(float(value))}


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log finite metrics in one call; NaN values (e.g. a target never reached) are left out."""
    import mlflow

    finite = finite_metrics(metrics)
    if finite:
        store.with_retry(mlflow.log_metrics, finite, step=step)


@contextmanager
def tracked_run(
    settings: RunSettings,
    experiment: str,
    *,
    role: str = "single",
    run_name: str | None = None,
    arm: str | None = None,
    seed: int | None = None,
    params: Mapping[str, object] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run in experiment ``anncore-<experiment>`` and end it with a definite status.

    Parameters
    ----------
    settings : RunSettings
        The command's settings (its invocation, provenance, ...).
    experiment : str
        Experiment name, e.g. ``"depth"``.
    role : {"single", "parent", "child"}
        Tagged as ``anncore.role``. A child is nested under the active run.
    run_name : str, optional
        Display name; defaults to the experiment (or arm) name.
    arm, seed : optional
        A study arm and seed, tagged on child runs.
    params : mapping, optional
        Extra params logged together with :func:`common_params`.

    Yields
    ------
    mlflow.ActiveRun
    """
    import mlflow

    experiment_id = store.get_or_create_experiment(experiment, mlflow.get_tracking_uri())
    # MLflow's system-metrics monitor says four INFO lines per run (started, no GPU, stopping,
    # stopped): noise in a suite of many runs. Its warnings (it could not reach the server) come
    # from its thread before the run's own write fails, which the suite reports as the one
    # `error:` line that names the cause; only its errors still show.
    logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)
    name = run_name or (f"{arm}-seed{seed}" if role == "child" else experiment)
    run = None
    try:
        # A signal held during start_run is raised as this block ends, when `run` is set, so
        # the new run ends KILLED (raised from with_retry itself, it left no run to end, and
        # MLflow's exit hook would have ended the run FINISHED).
        with store.write_guard():
            run = store.with_retry(
                mlflow.start_run,
                experiment_id=experiment_id,
                run_name=name,
                nested=role == "child",
                log_system_metrics=settings.system_metrics,  # sampled every 10 s by MLflow's monitor thread
                tags=run_tags(settings, experiment, role, arm, seed),
            )
    except BaseException:
        if run is None:  # never started: nothing to end
            raise
        with definite_end(run):
            raise
    with definite_end(run):
        log_params({**common_params(settings, seed), **(params or {})})
        yield run


@contextmanager
def definite_end(run: mlflow.ActiveRun) -> Iterator[None]:
    """End ``run`` by how the block ends: FINISHED; KILLED on ``KeyboardInterrupt``; FAILED, with the error, otherwise.

    The one way a run of the suite ends (the exception, if any, propagates, carrying the
    outermost run's id as ``anncore_run_id`` for the suite's summary).
    """
    try:
        yield
    except KeyboardInterrupt as interruption:
        _remember_run(interruption, run)
        end_run(run, "KILLED", f"{type(interruption).__name__}: {interruption}".rstrip(": "))
        raise
    except BaseException as error:
        _remember_run(error, run)
        if store.is_server_gone(error):  # nothing reaches it: pop the run locally; cleanup ends it later
            end_run(run, "KILLED", server_gone=True)
        else:
            end_run(run, "FAILED", f"{type(error).__name__}: {error}", traceback.format_exc())
        raise
    else:
        end_run(run, "FINISHED")


def _remember_run(error: BaseException, run: mlflow.ActiveRun) -> None:
    """Attach the run id to the exception; the outermost run's id wins, so the suite reports it."""
    with contextlib.suppress(AttributeError, TypeError):
        error.anncore_run_id = run.info.run_id


def end_run(run: mlflow.ActiveRun, status: str, reason: str | None = None, details: str | None = None,
            server_gone: bool = False) -> None:
    """Record why ``run`` stopped (tag ``anncore.error``, ``error.txt``) and end it as ``status``.

    Every step is attempted even if an earlier one fails, so the run is ended as far as the
    store allows and MLflow's active-run stack is always popped. With ``server_gone`` (the
    tracking server stopped answering) only the end itself is tried, once and briefly: the run
    stays RUNNING on the server until the next suite on this host or ``cleanup`` ends it KILLED.
    """
    import mlflow

    if server_gone:
        with store.one_quick_try(), contextlib.suppress(Exception):
            mlflow.end_run(status)
        return

    steps = []
    if reason is not None:
        steps.append(lambda: store.with_retry(mlflow.set_tag, "anncore.error", reason[:MAX_TAG_LENGTH]))
    if details is not None:
        steps.append(lambda: store.with_retry(mlflow.log_text, details, "error.txt"))
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - ending the run matters more than one failed call
            pass
    try:
        mlflow.end_run(status)  # pops the active-run stack first, then writes the status
    except Exception:  # noqa: BLE001
        try:
            store.with_retry(mlflow.MlflowClient().set_terminated, run.info.run_id, status)
        except Exception:  # noqa: BLE001 - the store is gone; nothing more can be recorded
            pass


class EpochMetricsLogger:
    """Trainer callback that collects each epoch's metrics and writes them in batches.

    Every numeric column of the epoch's history row (losses, accuracies, ``epoch_time_s``,
    ``samples_per_sec``, ``eval_time_s`` and ``grad_norm/layerN`` when tracked) is kept with
    ``step = epoch`` and the time the epoch ended. The rows reach the store in one
    ``log_batch`` call once ``flush_every_s`` seconds have passed since the last write (or
    ``MAX_METRICS_PER_WRITE`` metrics wait, when epochs are very short), so a long run still
    shows its curves in the MLflow UI as it trains, and in one last call from
    :meth:`flush`, which the caller makes when training ends, normally or not.

    Why not a call per epoch: one synchronous write costs 10-20 ms on SQLite, about 7 % of a
    baseline run on the 8k subset. Why not MLflow's asynchronous logging: its queue waits up to
    a second to shut down at the end of every run (measured with MLflow 3.17).

    Parameters
    ----------
    flush_every_s : float
        Least time between two writes during training.
    """

    def __init__(self, flush_every_s: float = METRICS_FLUSH_EVERY_S) -> None:
        import mlflow

        run = mlflow.active_run()
        if run is None:
            raise RuntimeError("EpochMetricsLogger needs an active MLflow run")
        self.run_id = run.info.run_id
        self.flush_every_s = flush_every_s
        self._pending: list[mlflow.entities.Metric] = []
        self._last_write = time.monotonic()

    def __call__(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> None:
        self.add(row_metrics(row), step=int(epoch))
        waited = time.monotonic() - self._last_write >= self.flush_every_s
        if waited or len(self._pending) >= MAX_METRICS_PER_WRITE:
            self.flush()

    def add(self, metrics: Mapping[str, float], step: int) -> None:
        """Keep ``metrics`` at ``step`` for the next write."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        self._pending.extend(Metric(key, value, timestamp, step) for key, value in finite_metrics(metrics).items())

    def flush(self, final: Mapping[str, float] | None = None) -> None:
        """Write the collected epochs, plus ``final`` metrics (step 0) if given, in one call."""
        import mlflow

        if final:
            self.add(final, step=0)
        if self._pending:
            from mlflow.entities import RunTag

            heartbeat = [RunTag(liveness.HEARTBEAT_TAG, liveness.heartbeat_value())]  # the run is alive
            with store.write_guard():  # a signal held by the write is raised after the next line
                store.with_retry(mlflow.MlflowClient().log_batch, self.run_id, metrics=self._pending, tags=heartbeat)
                self._pending = []  # only once written: a failed write leaves them for the next flush
        self._last_write = time.monotonic()


def row_metrics(row: Mapping[str, float]) -> dict[str, float]:
    """The metrics of one history row: every column except ``epoch``."""
    return {key: float(value) for key, value in row.items() if key != "epoch"}
