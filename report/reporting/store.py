"""Read the experiments' MLflow store: find it, pick the latest finished run, load its artifacts.

The store is found the way the experiments find it (``MLFLOW_TRACKING_URI``, else ``mlruns/`` in
the working directory), except that the search for ``mlruns/mlflow.db`` also walks upward: Quarto
runs the report's chunks with ``report/`` as the working directory, one level below the store.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path, PurePosixPath

import mlflow
import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from experiments.studies import EXPERIMENT_NAMES
from experiments.tracking.store import (
    EXPERIMENT_PREFIX,
    STORE_DB,
    STORE_DIR,
    TRACKING_URI_VARIABLE,
    check_tracking_uri,
    resolve_tracking_uri,
    sqlite_database_path,
)
from reporting.i18n import _

SQLITE_HEADER = b"SQLite format 3\x00"


def find_tracking_uri(start: Path | str | None = None) -> str:
    """Return the tracking URI of the store the report should read.

    Parameters
    ----------
    start : Path or str, optional
        Directory to search upward from for ``mlruns/mlflow.db``; default the working directory.

    Returns
    -------
    str
        ``MLFLOW_TRACKING_URI`` when set; else ``sqlite:///`` of the nearest ``mlruns/mlflow.db``
        at or above ``start``; else the experiments' default store in the working directory
        (all through ``experiments.tracking.resolve_tracking_uri``, which also validates it).
    """
    if os.environ.get(TRACKING_URI_VARIABLE):
        return resolve_tracking_uri()
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        db = directory / STORE_DIR / STORE_DB
        if db.is_file():
            return resolve_tracking_uri(f"sqlite:///{db}")
    return resolve_tracking_uri()


# Studies the report shows that are not experiments of ``python -m experiments``: each logs into
# its own ``anncore-<name>`` experiment, made by its own command.
OTHER_STUDY_COMMANDS: dict[str, str] = {
    "benchmark": "python -m experiments.benchmark --data-dir <data-dir> --log-mlflow",
}
STUDY_NAMES: tuple[str, ...] = (*EXPERIMENT_NAMES, *OTHER_STUDY_COMMANDS)


def run_command(name: str) -> str:
    """The shell command that produces the runs of study ``name``.

    Parameters
    ----------
    name : str
        One of ``STUDY_NAMES``: an experiment of the suite, or ``"benchmark"``.

    Returns
    -------
    str
        ``python -m experiments run <name>`` for an experiment; the study's own command
        (from ``OTHER_STUDY_COMMANDS``) otherwise.

    Raises
    ------
    ValueError
        For a name that is not one of ``STUDY_NAMES``.
    """
    if name in EXPERIMENT_NAMES:
        return f"python -m experiments run {name}"
    if name in OTHER_STUDY_COMMANDS:
        return OTHER_STUDY_COMMANDS[name]
    raise ValueError(f"unknown experiment {name!r}; accepted: {', '.join(STUDY_NAMES)}")


def check_artifact_path(path: object) -> str:
    """Return ``path`` if it names a file inside a run's artifacts, else raise.

    Raises
    ------
    TypeError
        ``path`` is not a string.
    ValueError
        ``path`` is empty, absolute or climbs out of the run with ``..``.
    """
    accepted = "accepted: a relative path inside the run, such as 'history.csv' or 'traces/todo_3_2_1.json'"
    if not isinstance(path, str):
        raise TypeError(f"artifact path must be a string, got {path!r}; {accepted}")
    parts = PurePosixPath(path).parts
    if not path.strip() or path.startswith(("/", "\\")) or ".." in parts or "\\" in path:
        raise ValueError(f"artifact path {path!r} is not inside the run; {accepted}")
    return path


def _check_database_file(uri: str) -> bool:
    """Whether the SQLite store of ``uri`` holds data; raise ValueError if its file is not SQLite."""
    path = sqlite_database_path(uri)
    if not path.is_file() or path.stat().st_size == 0:
        return False  # an empty store; opening it would create MLflow's tables
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ValueError(
            f"MLflow store {uri!r} is not an SQLite database; accepted: the mlflow.db that "
            "python -m experiments writes, or MLFLOW_TRACKING_URI naming another store"
        )
    return True


def format_time(when: datetime | None) -> str:
    """Format a UTC time as ``2025-01-31 14:05 UTC`` (or ``unknown``)."""
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "unknown"


def _utc(milliseconds: int | None) -> datetime | None:
    if milliseconds is None:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class StoredRun:
    """One finished MLflow run, with what the report needs to cite it.

    Attributes
    ----------
    name : str
        The study name (the experiment is ``anncore-<name>``).
    run_id : str
        MLflow's run id.
    start_time, end_time : datetime or None
        When the run started and ended, in UTC.
    params, metrics, tags : dict
        The run's logged parameters (strings), final metric values and tags.
    """

    name: str
    run_id: str
    start_time: datetime | None
    end_time: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mlflow(cls, name: str, run: Run) -> StoredRun:
        """Build from an ``mlflow.entities.Run`` of study ``name``."""
        return cls(
            name=name,
            run_id=run.info.run_id,
            start_time=_utc(run.info.start_time),
            end_time=_utc(run.info.end_time),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            tags=dict(run.data.tags),
        )

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment the run belongs to."""
        return EXPERIMENT_PREFIX + self.name

    @property
    def device(self) -> str:
        """The device the run trained on (its ``device`` param), or ``unknown``."""
        return self.params.get("device", "unknown")

    @property
    def quick(self) -> bool:
        """Whether the run was made with ``--quick`` (shortened training)."""
        return self.params.get("quick", "False").lower() in {"true", "1", "yes"}

    @property
    def short_id(self) -> str:
        """The first 8 characters of the run id, enough to find it in the MLflow UI."""
        return self.run_id[:8]

    def citation(self) -> str:
        """Markdown naming the run: ``run `1a2b3c4d` (anncore-baseline, 2025-... UTC, cpu)``."""
        return _("run `{id}` ({experiment}, {time}, {device})").format(
            id=self.short_id, experiment=self.experiment_name, time=format_time(self.start_time), device=self.device
        )


class Store:
    """Read-only access to an anncore MLflow store.

    Parameters
    ----------
    tracking_uri : str, optional
        The store to read; default :func:`find_tracking_uri`. A ``sqlite:///`` URI whose file
        does not exist (or is empty) is an empty store (it is not created).

    Raises
    ------
    ValueError
        The URI is not ``sqlite:///...`` or ``http(s)://...``, or its file is not SQLite.
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        # MLflow's download progress bars would land in the report as stderr output.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.tracking_uri = tracking_uri or find_tracking_uri()
        check_tracking_uri(self.tracking_uri)
        is_sqlite = self.tracking_uri.startswith("sqlite:///")
        self.exists = not is_sqlite or _check_database_file(self.tracking_uri)
        self._client = MlflowClient(self.tracking_uri) if self.exists else None
        self._tempdir = tempfile.TemporaryDirectory(prefix="anncore-report-")
        self._downloads = Path(self._tempdir.name)

    def __repr__(self) -> str:
        return f"Store({self.tracking_uri!r})"

    def experiment_id(self, name: str) -> str | None:
        """Return the id of experiment ``anncore-<name>``, or None when there is none.

        Raises
        ------
        ValueError
            For a name that is not one of ``STUDY_NAMES``.
        """
        run_command(name)  # validates the name
        if self._client is None:
            return None
        # On a class server with accounts a student's runs are in anncore-<name>/<user>: the
        # report shows that user's own when there are any, else the shared experiment's.
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        names = ([f"{EXPERIMENT_PREFIX}{name}/{user}"] if user and self.tracking_uri.startswith("http") else [])
        for full_name in [*names, EXPERIMENT_PREFIX + name]:
            experiment = self._client.get_experiment_by_name(full_name)
            if experiment:
                return experiment.experiment_id
        return None

    def latest_finished_run(self, name: str) -> StoredRun | None:
        """Return the most recently started finished top-level run of study ``name``, or None.

        Top-level means role ``single`` or ``parent``: the children of a multi-seed study are
        reached through :meth:`child_runs`.
        """
        experiment_id = self.experiment_id(name)
        if experiment_id is None:
            return None
        runs = self._client.search_runs(
            [experiment_id],
            filter_string="attributes.status = 'FINISHED' and tags.`anncore.role` != 'child'",
            run_view_type=ViewType.ACTIVE_ONLY,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return StoredRun.from_mlflow(name, runs[0]) if runs else None

    def child_runs(self, parent: StoredRun) -> list[StoredRun]:
        """Return the finished child runs of ``parent``, oldest first."""
        experiment_id = self.experiment_id(parent.name)
        runs = self._client.search_runs(
            [experiment_id],
            filter_string=(
                "attributes.status = 'FINISHED' and "
                f"tags.`mlflow.parentRunId` = '{parent.run_id}'"
            ),
            order_by=["attributes.start_time ASC"],
        )
        return [StoredRun.from_mlflow(parent.name, run) for run in runs]

    def run_by_id(self, name: str, run_id: str) -> StoredRun:
        """The run ``run_id`` of study ``name`` (a child named in a parent's results.csv, say).

        Raises
        ------
        ValueError
            When the store has no run ``run_id``.
        """
        try:
            run = self._client.get_run(run_id) if self._client else None
        except mlflow.exceptions.MlflowException:
            run = None
        if run is None:
            raise ValueError(
                f"run id {run_id!r} does not exist in the MLflow store {self.tracking_uri}; "
                f"accepted: the id of a run of anncore-{name} in this store"
            )
        return StoredRun.from_mlflow(name, run)

    def artifact_file(self, run: StoredRun, path: str) -> Path:
        """Download (once) and return the local path of artifact ``path`` of ``run``.

        Raises
        ------
        FileNotFoundError
            When the run has no artifact at ``path``; the message lists what the folder holds.
        ValueError
            When ``path`` is absolute or leaves the run (see :func:`check_artifact_path`).
        """
        target = self._downloads / run.run_id / check_artifact_path(path)
        if not target.exists():
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run.run_id,
                    artifact_path=path,
                    dst_path=str(self._downloads / run.run_id),
                    tracking_uri=self.tracking_uri,
                )
            except Exception as error:  # MLflow raises its own types for a missing artifact
                raise FileNotFoundError(
                    f"run {run.run_id} ({run.experiment_name}) has no artifact {path!r}; "
                    f"accepted: {self._artifact_listing(run, path)}"
                ) from error
            target = Path(local)
        return target

    def _artifact_listing(self, run: StoredRun, path: str) -> str:
        """The artifacts beside ``path`` in ``run``, for an error message."""
        folder = path.rpartition("/")[0] or None
        try:
            names = sorted(item.path for item in self._client.list_artifacts(run.run_id, folder))
        except Exception:  # noqa: BLE001 - only decorates an error message
            names = []
        return ", ".join(names) if names else f"the run has no artifacts in {folder or 'its root'}"

    def has_artifact(self, run: StoredRun, path: str) -> bool:
        """Whether ``run`` logged an artifact at ``path``."""
        folder = check_artifact_path(path).rpartition("/")[0] or None
        return any(item.path == path for item in self._client.list_artifacts(run.run_id, folder))

    def load_csv(self, run: StoredRun, path: str, **read_csv: object) -> pd.DataFrame:
        """Load a CSV artifact as a DataFrame (``read_csv`` goes to ``pandas.read_csv``)."""
        return pd.read_csv(self.artifact_file(run, path), **read_csv)

    def load_json(self, run: StoredRun, path: str) -> dict:
        """Load a JSON artifact."""
        return json.loads(self.artifact_file(run, path).read_text())

    def load_text(self, run: StoredRun, path: str) -> str:
        """Load a text artifact."""
        return self.artifact_file(run, path).read_text()

    def load_bytes(self, run: StoredRun, path: str) -> bytes:
        """Load a binary artifact (a PNG, say) as bytes."""
        return self.artifact_file(run, path).read_bytes()


@cache
def _store_for(tracking_uri: str) -> Store:
    return Store(tracking_uri)


def open_store() -> Store:
    """Return the (cached) :class:`Store` for :func:`find_tracking_uri`'s current answer."""
    return _store_for(find_tracking_uri())


def latest_finished_run(name: str) -> StoredRun | None:
    """Return the latest finished top-level run of study ``name`` in the report's store."""
    return open_store().latest_finished_run(name)
