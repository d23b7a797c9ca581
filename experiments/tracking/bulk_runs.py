"""Many runs of one stack written together: created in one pass, written in one pass per write, ended in one pass.

The search's stacked trials (``--trials-per-batch K``) train K models at once, each its own MLflow
run. Writing them as :func:`~experiments.tracking.training.train_logged` writes one run (start,
params, dataset, metrics, history, tags, end, each its own call at its own time) would cost K times
one run's logging, about 0.07 s each on SQLite: at K = 128 more than the training itself. Here:

- :func:`create_runs` creates the K runs, every tag given at creation (the liveness tags included);
- :class:`RunsWriter` keeps each run's params, metrics and tags until a write, then sends every
  run's in one ``log_batch`` call (params go with the first write, a run's heartbeat tag with each);
  the stack writes after an epoch once ``flush_every_s`` have passed since its last write, and each
  member once more when it ends;
- :func:`end_runs` ends them, each with its own status.

Nothing here knows about Optuna or the search: runs are ids.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from experiments.tracking import liveness, store
from experiments.tracking.runs import METRICS_FLUSH_EVERY_S, finite_metrics

if TYPE_CHECKING:
    import pandas as pd

# MLflow's limits for one log_batch call.
MAX_METRICS_PER_CALL, MAX_PARAMS_PER_CALL, MAX_TAGS_PER_CALL = 1000, 100, 100


def create_runs(experiment_id: str, runs: Sequence[tuple[str, Mapping[str, str]]]) -> list[str]:
    """Create one run per ``(run_name, tags)`` in ``experiment_id``, all tags set at creation; their ids.

    Parameters
    ----------
    experiment_id : str
        The MLflow experiment.
    runs : sequence of (str, mapping)
        Each run's name and tags (``mlflow.parentRunId`` makes it a child run).
    """
    import mlflow

    client = mlflow.MlflowClient()
    return [store.with_retry(client.create_run, experiment_id, run_name=name, tags=dict(tags)).info.run_id
            for name, tags in runs]


def _clean_params(params: Mapping[str, object]) -> dict[str, str]:
    return {key: (str(value).lower() if isinstance(value, bool) else str(value)) for key, value in params.items()}


class RunsWriter:
    """Params, metrics and tags of many runs, kept until a write sends each run's in one ``log_batch`` call.

    Parameters
    ----------
    flush_every_s : float
        Least time between two writes of the whole stack while it trains (:meth:`due`).
    """

    def __init__(self, flush_every_s: float = METRICS_FLUSH_EVERY_S) -> None:
        self.flush_every_s = flush_every_s
        self._params: dict[str, dict[str, str]] = {}
        self._metrics: dict[str, list] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._last_write = time.monotonic()
        self.last_run_write: dict[str, float] = {}  # run id -> monotonic time of its last write (the heartbeat's)

    def add(self, run_id: str, *, params: Mapping[str, object] | None = None, metrics: Mapping[str, float] | None = None,
            step: int = 0, tags: Mapping[str, str] | None = None) -> None:
        """Keep ``params``, finite ``metrics`` (at ``step``) and ``tags`` of ``run_id`` for its next write."""
        from mlflow.entities import Metric

        self._params.setdefault(run_id, {}).update(_clean_params(params or {}))
        timestamp = int(time.time() * 1000)
        self._metrics.setdefault(run_id, []).extend(
            Metric(key, value, timestamp, step) for key, value in finite_metrics(metrics or {}).items())
        self._tags.setdefault(run_id, {}).update(tags or {})
        self.last_run_write.setdefault(run_id, time.monotonic())  # new: its creation set its first heartbeat

    def due(self) -> bool:
        """Whether ``flush_every_s`` have passed since the last write of the whole stack."""
        return time.monotonic() - self._last_write >= self.flush_every_s

    def flush(self, run_ids: Sequence[str] | None = None) -> None:
        """Write what is kept for ``run_ids`` (default: every run): one ``log_batch`` call per run, with its heartbeat."""
        everything = run_ids is None
        for run_id in list(self._params if everything else run_ids):
            self._write(run_id)
        if everything:
            self._last_write = time.monotonic()

    def _write(self, run_id: str) -> None:
        import mlflow
        from mlflow.entities import Param, RunTag

        params = [Param(k, v) for k, v in self._params.get(run_id, {}).items()]
        metrics = self._metrics.get(run_id, [])
        tags = [RunTag(k, v) for k, v in {**self._tags.get(run_id, {}),
                                          liveness.HEARTBEAT_TAG: liveness.heartbeat_value()}.items()]
        client = mlflow.MlflowClient()
        with store.write_guard():  # a signal held by a write is raised after the block
            while params or metrics or tags:
                store.with_retry(client.log_batch, run_id, metrics=metrics[:MAX_METRICS_PER_CALL],
                                 params=params[:MAX_PARAMS_PER_CALL], tags=tags[:MAX_TAGS_PER_CALL])
                params, metrics, tags = (params[MAX_PARAMS_PER_CALL:], metrics[MAX_METRICS_PER_CALL:],
                                         tags[MAX_TAGS_PER_CALL:])
            # only once written: a failed write leaves them for the next flush
            self._params[run_id], self._metrics[run_id], self._tags[run_id] = {}, [], {}
        self.last_run_write[run_id] = time.monotonic()

    def forget(self, run_id: str) -> None:
        """Drop ``run_id`` (ended): the stack's next writes leave it out."""
        for kept in (self._params, self._metrics, self._tags, self.last_run_write):
            kept.pop(run_id, None)


def log_csv_to(run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
    """Log ``table`` as the CSV artifact ``artifact_file`` (a name at the run's root) of ``run_id``, no index."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="anncore-artifact-") as folder:
        path = Path(folder) / artifact_file
        table.to_csv(path, index=False)
        store.with_retry(mlflow.MlflowClient().log_artifact, run_id, str(path))


def log_text_to(run_id: str, text: str, artifact_file: str) -> None:
    """Log ``text`` as the artifact ``artifact_file`` of ``run_id``."""
    import mlflow

    store.with_retry(mlflow.MlflowClient().log_text, run_id, text, artifact_file)


def end_runs(statuses: Mapping[str, str]) -> None:
    """End each run (id -> ``FINISHED``, ``FAILED`` or ``KILLED``); every run is tried even if one fails."""
    import mlflow

    client = mlflow.MlflowClient()
    for run_id, status in statuses.items():
        with contextlib.suppress(Exception):  # the others must still be ended; the store may be gone
            store.with_retry(client.set_terminated, run_id, status)


def beat(run_ids: Sequence[str]) -> None:
    """Refresh the heartbeat tag of ``run_ids`` (a stack's live runs), one call each; errors are left for the writes."""
    import mlflow

    client = mlflow.MlflowClient()
    for run_id in run_ids:
        with contextlib.suppress(Exception):
            store.with_retry(client.set_tag, run_id, liveness.HEARTBEAT_TAG, liveness.heartbeat_value())
