"""Where runs go: resolve and check the MLflow store, and create experiments in it safely.

Accepted stores are MLflow's SQLite backend (``sqlite:///path/mlflow.db``, artifacts in
``artifacts/`` next to the database file) and a tracking server (``http://`` or ``https://``),
which is checked for reachability within a few seconds before anything starts. Calls that
write to a SQLite store go through :func:`with_retry`, so two suites sharing one store wait
for each other's locks instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import re
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar
from urllib.parse import urlparse

from experiments.settings import UserInputError

T = TypeVar("T")

EXPERIMENT_PREFIX = "anncore-"
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
USERNAME_VARIABLE, PASSWORD_VARIABLE = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
STORE_DIR = "mlruns"  # the default store: <cwd>/mlruns/mlflow.db
# MLflow 3's UI opens an experiment in its GenAI view (traces) unless the experiment's kind says
# model training; its kind selector writes this tag.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# Where `mlflow ui` listens by default, and the hash route of an experiment's runs table in the
# "Model training" view (the UI otherwise remembers the last view in localStorage, default GenAI).
DEFAULT_UI_URL = "http://127.0.0.1:5000"
UI_RUNS_ROUTE = "#/experiments/{experiment_id}/runs?workflowType=machine_learning"
STORE_DB = "mlflow.db"
SERVER_CHECK_TIMEOUT_S = 3.0
# A server that goes away mid-suite must fail a run within seconds, not retry for minutes: two
# retries at once (up to 0.5 s apart), not MLflow's growing backoff (factor 1: the error line came
# 10-12 s after the server stopped). A 5xx from a server whose database restarts is retried by
# with_retry below, for up to SERVER_ERROR_RETRY_S.
HTTP_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
LOCK_RETRY_ATTEMPTS = 8
# A tracking server whose database restarts answers 5xx for a few seconds: its writes are retried this long.
SERVER_ERROR_RETRY_S, SERVER_ERROR_DELAY_S = 60.0, 2.0
SERVER_ERROR_PATTERN = re.compile(r"too many 50[0234] error responses|error code 50[0234] != 200")
LOCK_RETRY_FIRST_DELAY_S = 0.1
# A server that is gone: nothing answers (refused, reset, timed out), as opposed to a 5xx.
SERVER_GONE_PATTERN = re.compile(r"Connection refused|NewConnectionError|ConnectTimeout|timed out|"
                                 r"RemoteDisconnected|Connection reset|Connection aborted")
GONE_TIMEOUT_S = "2"


def resolve_tracking_uri(value: str | None = None) -> str:
    """Return the tracking URI to use: ``value``, else ``$MLFLOW_TRACKING_URI``, else the default store.

    The default is ``sqlite:///<cwd>/mlruns/mlflow.db`` (artifacts in ``<cwd>/mlruns/artifacts``).
    The URI is validated (see :func:`check_tracking_uri`) but not contacted.

    Parameters
    ----------
    value : str or None
        An explicit URI, e.g. from ``--tracking-uri``.

    Returns
    -------
    str
        A ``sqlite:///`` URI with an absolute path, or an ``http(s)://`` URI.

    Raises
    ------
    UserInputError
        For a file path, ``file:`` URI or any other unsupported scheme.
    """
    from_environment = not value and bool(os.environ.get(TRACKING_URI_VARIABLE))
    uri = value or os.environ.get(TRACKING_URI_VARIABLE) or f"sqlite:///{Path.cwd() / STORE_DIR / STORE_DB}"
    try:
        check_tracking_uri(uri)
    except UserInputError as error:
        if from_environment:
            raise UserInputError(f"{error} (from $MLFLOW_TRACKING_URI)") from None
        raise
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{sqlite_database_path(uri)}"
    return uri.rstrip("/")


def check_tracking_uri(uri: str) -> None:
    """Raise ``UserInputError`` unless ``uri`` is a ``sqlite:///`` or ``http(s)://`` URI."""
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///") or uri == "sqlite:///" or uri.startswith("sqlite:///:memory:"):
            raise UserInputError(
                f"tracking URI {uri!r} names no database file; accepted: sqlite:///relative/mlflow.db "
                "or sqlite:////absolute/mlflow.db"
            )
        return
    if scheme in ("http", "https"):
        if not urlparse(uri).netloc:
            raise UserInputError(f"tracking URI {uri!r} has no host; accepted: http(s)://host:port")
        return
    if scheme in ("", "file") or len(scheme) == 1:  # a path, file:, or a Windows drive letter
        raise UserInputError(
            f"tracking URI {uri!r} is a file store, which MLflow 3 no longer supports; "
            "accepted: sqlite:///path/mlflow.db or http(s)://host:port"
        )
    raise UserInputError(
        f"tracking URI {uri!r} has unsupported scheme {scheme!r}; accepted: sqlite, http, https"
    )


def sqlite_database_path(uri: str) -> Path:
    """The absolute database file of a ``sqlite:///`` URI (relative paths are relative to the cwd)."""
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path).expanduser().resolve()


def artifact_root(uri: str) -> Path | None:
    """``<database folder>/artifacts`` for a SQLite store; None for a server, which decides itself."""
    if uri.startswith("sqlite:///"):
        return sqlite_database_path(uri).parent / "artifacts"
    return None


def check_server_reachable(uri: str, timeout_s: float = SERVER_CHECK_TIMEOUT_S) -> None:
    """GET ``<uri>/health``; raise ``UserInputError`` naming the URI if no server answers in time."""
    import requests

    try:
        response = requests.get(f"{uri}/health", timeout=timeout_s)
    except requests.RequestException as error:
        reason = type(error).__name__
        raise UserInputError(
            f"tracking server {uri} is not reachable ({reason}); start it "
            "(mlflow server --host 127.0.0.1 --port PORT) or pass another --tracking-uri"
        ) from None
    if response.status_code != 200:
        raise UserInputError(
            f"tracking server {uri} answered /health with HTTP {response.status_code}; "
            "accepted: a running MLflow tracking server"
        )


def check_server_credentials(uri: str, timeout_s: float = SERVER_CHECK_TIMEOUT_S) -> None:
    """Search one experiment with ``$MLFLOW_TRACKING_USERNAME``/``PASSWORD``; a 401 or 403 is a ``UserInputError``.

    A server with accounts (``mlflow server --app-name basic-auth``) answers 401 without or
    with wrong credentials; checking before any run starts leaves nothing half-written.
    """
    import requests

    user, password = os.environ.get(USERNAME_VARIABLE), os.environ.get(PASSWORD_VARIABLE)
    try:
        response = requests.get(f"{uri}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                                auth=(user, password or "") if user else None, timeout=timeout_s)
    except requests.RequestException as error:
        raise UserInputError(f"tracking server {uri} is not reachable ({type(error).__name__})") from None
    if response.status_code == 401:
        if not user:
            raise UserInputError(
                f"tracking server {uri} needs an account; set {USERNAME_VARIABLE} and {PASSWORD_VARIABLE} "
                "to the account your teacher created"
            )
        raise UserInputError(
            f"tracking server {uri} refused user {user!r} (HTTP 401: wrong username or password); "
            f"accepted: {USERNAME_VARIABLE} and {PASSWORD_VARIABLE} of an account on it"
        )
    if response.status_code == 403:
        raise UserInputError(f"tracking server {uri} denied user {user!r} (HTTP 403); ask for READ permission")


def experiment_full_name(name: str) -> str:
    """``anncore-<name>``; on a server with accounts, ``anncore-<name>/<user>``.

    MLflow's permissions are per experiment, and creating a run needs write permission on its
    experiment, so on a class server each student logs into experiments of their own (which
    they manage) and can read, but not change, everyone else's.
    """
    import mlflow

    user = os.environ.get(USERNAME_VARIABLE)
    if user and mlflow.get_tracking_uri().startswith("http"):
        return f"{EXPERIMENT_PREFIX}{name}/{user}"
    return EXPERIMENT_PREFIX + name


def check_experiments_are_yours(names: list[str]) -> None:
    """On a server with accounts: each experiment named for this user must be theirs to write.

    Raises
    ------
    UserInputError
        One line, before any run starts, when someone else made ``anncore-<name>/<user>`` first.
    """
    import mlflow
    import requests

    user, uri = os.environ.get(USERNAME_VARIABLE), mlflow.get_tracking_uri()
    if not (user and uri.startswith("http")):
        return
    client = mlflow.MlflowClient()
    for name in names:
        experiment = with_retry(client.get_experiment_by_name, experiment_full_name(name))
        if experiment is None:
            continue
        response = requests.get(f"{uri}/api/3.0/mlflow/users/permissions/get", timeout=30,
                                auth=(user, os.environ.get(PASSWORD_VARIABLE, "")),
                                params={"username": user, "resource_type": "experiment",
                                        "resource_id": experiment.experiment_id})
        permission = response.json().get("permission") if response.ok else None
        if permission is not None and permission not in ("EDIT", "MANAGE"):
            raise UserInputError(
                f"experiment {experiment.name!r} on {uri} belongs to another account (you have {permission}), "
                f"so your runs there would be refused; ask your teacher to run: "
                f"python -m experiments.server claim --folder FOLDER {user}"
            )


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (SQLAlchemy appends the SQL and a link on more lines)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else repr(error)


class StoreLockedError(RuntimeError):
    """A SQLite store still locked after :func:`with_retry`'s last attempt."""


def is_database_locked(error: BaseException) -> bool:
    """True for SQLite's transient "database is locked" error, however MLflow wrapped it."""
    return "database is locked" in str(error).lower()


# MLflow logs a dataset by looking for it, then inserting it when absent, in one transaction; two
# processes logging the same dataset to one experiment at once can both look, and the second insert
# then breaks the datasets table's key (SQLite: "UNIQUE constraint failed: datasets.experiment_id,
# ..."; PostgreSQL: 'duplicate key ... "dataset_pk"'). The losing transaction is rolled back whole.
DATASET_INSERT_RACE = re.compile(r"UNIQUE constraint failed: datasets\.|unique constraint \"dataset_pk\"", re.I)


def is_dataset_insert_race(error: BaseException) -> bool:
    """True when logging a dataset lost the insert race above: logging it again finds the winner's row."""
    return bool(DATASET_INSERT_RACE.search(str(error)))


class Interrupts:
    """SIGINT/SIGTERM received while :func:`second_signal_exits` counts them (a suite is running).

    The first signal ends the current run KILLED; from then on no write holds signals back or
    waits for a lock twice, and a second signal ends the process at once.
    """

    armed = False
    received = 0  # counted as they arrive (a thread reads the wakeup fd)
    stopping = False  # set by the suite's handler as it raises the first interruption


def exit_at_once(signum: int) -> None:
    """End the process now with status 128 + ``signum``, without cleanup (a second Ctrl-C)."""
    name = signal.Signals(signum).name
    os.write(2, f"\n{name} again: exiting at once; a run being ended may stay RUNNING\n".encode())
    os._exit(128 + signum)


@contextmanager
def second_signal_exits() -> Iterator[None]:
    """Count SIGINT/SIGTERM as they arrive; the second one ends the process at once.

    Why a thread reading the wakeup fd: Python runs signal handlers only between bytecodes, so
    while the main thread waits inside SQLite (MLflow sets a 20 s busy timeout) a second Ctrl-C
    would reach no handler until the wait ended, and two would reach one handler call. The C
    handler writes each signal's number to the wakeup fd as it arrives. Nothing is counted
    outside the main thread, or where the wakeup fd is in use already (an event loop).
    """
    if Interrupts.armed or threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    if previous != -1:  # someone else's: give it back
        signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)
        yield
        return

    def count() -> None:
        while data := os.read(read_end, 64):  # b"" once the block below has closed write_end
            for number in data:
                if number in (signal.SIGINT, signal.SIGTERM):
                    Interrupts.received += 1
                    if Interrupts.received >= 2:
                        exit_at_once(number)

    Interrupts.armed, Interrupts.received = True, 0
    counter = threading.Thread(target=count, name="anncore-interrupts", daemon=True)
    counter.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        Interrupts.armed, Interrupts.received, Interrupts.stopping = False, 0, False
        os.close(write_end)
        counter.join(timeout=5)
        os.close(read_end)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends, then deliver them to their handlers.

    A SQLite write cut short by Ctrl-C inside its transaction leaves the connection holding
    the database lock, and every later write, the run's own KILLED status included, then
    waits on that lock. While the block runs, the two signals are only recorded; afterwards
    the previous handlers are put back and each recorded signal is raised again for them.
    Outside the main thread (where Python cannot set handlers) nothing is held, nor once the
    suite has received its first signal (see :class:`Interrupts`): its runs are being ended
    then, and a user who presses Ctrl-C again wants out, not the write finished.
    """
    if threading.current_thread() is not threading.main_thread() or Interrupts.stopping:
        yield
        return
    caught: list[int] = []

    def record(number: int, frame: object) -> None:
        caught.append(number)

    # Why an ExitStack: signal.signal() first runs the handlers of signals already pending, which
    # may raise; every handler replaced so far must still be put back, and the held signals are
    # raised again only after all of them are (else a handler could stay `record` for good).
    with contextlib.ExitStack() as restore:
        restore.callback(_deliver, caught)
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not None:  # None: installed outside Python, cannot be put back
                restore.callback(signal.signal, signum, signal.signal(signum, record))
        yield


def _deliver(caught: list[int]) -> None:
    """Hand each held signal to its own handler, now that it is back.

    The handler is called directly, not through ``raise_signal``, which :func:`second_signal_exits`
    would count as a second signal; a default action (SIGTERM outside a suite) is raised.
    """
    for signum in dict.fromkeys(caught):
        handler = signal.getsignal(signum)
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)


def write_guard() -> contextlib.AbstractContextManager[None]:
    """:func:`signals_held` for a SQLite store, nothing for a server (an HTTP call can be cut safely)."""
    import mlflow

    return signals_held() if mlflow.get_tracking_uri().startswith("sqlite:") else contextlib.nullcontext()


def with_retry(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call ``function``, retrying with exponential backoff while SQLite reports "database is locked".

    With a SQLite store, each call runs with :func:`signals_held`, so an interruption lands
    between writes, not inside one; the waits between attempts stay interruptible.
    """
    server_errors_until = None
    attempt = 0
    while attempt < LOCK_RETRY_ATTEMPTS:
        try:
            with write_guard():
                return function(*args, **kwargs)
        except Exception as error:
            if is_server_error(error):  # the server is up, its database is not (yet): wait for it
                server_errors_until = server_errors_until or time.monotonic() + SERVER_ERROR_RETRY_S
                if time.monotonic() > server_errors_until:
                    raise
                time.sleep(SERVER_ERROR_DELAY_S)
                continue
            if not is_database_locked(error) or Interrupts.stopping:
                raise
            if attempt == LOCK_RETRY_ATTEMPTS - 1:
                raise StoreLockedError(
                    f"the MLflow store stayed locked through {LOCK_RETRY_ATTEMPTS} attempts ({first_line(error)}); "
                    "another process is writing to it: try again when it has finished"
                ) from error
            time.sleep(LOCK_RETRY_FIRST_DELAY_S * 2**attempt * (1 + random.random()))
            attempt += 1
    raise AssertionError("unreachable")


def is_server_error(error: BaseException) -> bool:
    """True when a tracking server answered 500/502/503/504 (after MLflow's own few retries).

    That is a server which is up but whose database restarts or is briefly overloaded; a server
    that is gone (connection refused, timeout) is not retried here, so it still fails in seconds.
    """
    return bool(SERVER_ERROR_PATTERN.search(str(error)))


def is_server_gone(error: BaseException) -> bool:
    """True when a tracking server did not answer at all (after MLflow's own few retries)."""
    return bool(SERVER_GONE_PATTERN.search(str(error))) and not is_server_error(error)


@contextmanager
def one_quick_try() -> Iterator[None]:
    """MLflow requests in the block are tried once, with a 2 s timeout (a server known to be gone).

    Why: each request to a gone server is otherwise retried for a few seconds, and ending a run
    makes four of them; the ``error:`` line came after ~26 s instead of the promised 10.
    """
    saved = {name: os.environ.get(name) for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": GONE_TIMEOUT_S})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def restored_tracking_uri() -> Iterator[None]:
    """Put MLflow's tracking URI back afterwards, and ``$MLFLOW_TRACKING_URI``, which setting it changes."""
    import mlflow

    environment_uri = os.environ.get(TRACKING_URI_VARIABLE)
    explicit = mlflow.get_tracking_uri() if environment_uri is None and mlflow.is_tracking_uri_set() else None
    try:
        yield
    finally:
        mlflow.set_tracking_uri(explicit)  # None: unset again, which also removes the variable
        if environment_uri is not None:
            os.environ[TRACKING_URI_VARIABLE] = environment_uri


@contextmanager
def host_lock(key: str) -> Iterator[None]:
    """Serialise a find-or-create step across the processes of this machine, one lock per ``key``.

    Used for the first-time setup of an SQLite store (schema migrations race) and for a sweep's
    parent run (two suites starting one study at once would each create one).
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"anncore-store-{digest}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect(uri: str) -> None:
    """Point MLflow at ``uri``, after checking it, and make sure the store is initialised.

    For a server: lowers MLflow's HTTP retries and timeout (unless already set in the
    environment) and checks ``/health``. For SQLite: creates the schema under a
    cross-process lock, so two suites starting at once on a new store do not collide.

    Raises
    ------
    UserInputError
        Unsupported URI, unreachable server or unusable database file.
    """
    import mlflow

    check_tracking_uri(uri)
    if uri.startswith("http"):
        for name, value in HTTP_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        check_server_reachable(uri)
        check_server_credentials(uri)
        mlflow.set_tracking_uri(uri)
        return
    database = sqlite_database_path(uri)
    if database.is_dir():
        raise UserInputError(f"tracking URI {uri!r} names a folder; accepted: a database file such as mlflow.db")
    mlflow.set_tracking_uri(uri)
    with host_lock(uri):
        try:
            with_retry(mlflow.MlflowClient().search_experiments, max_results=1)
        except Exception as error:
            raise UserInputError(
                f"cannot open the MLflow store {uri!r}: {type(error).__name__}: {first_line(error)}; "
                "accepted: an MLflow SQLite database, or a new file in a writable folder"
            ) from None


def ui_runs_url(experiment_id: str, ui_url: str = DEFAULT_UI_URL) -> str:
    """The MLflow UI's link to an experiment's runs table in the "Model training" view."""
    return ui_url.rstrip("/") + "/" + UI_RUNS_ROUTE.format(experiment_id=experiment_id)


def get_or_create_experiment(name: str, uri: str) -> str:
    """Return the id of MLflow experiment ``anncore-<name>``, creating it if needed.

    For a SQLite store the experiment's artifact location is ``<artifact_root>/anncore-<name>``.
    Two processes creating the same experiment at once is fine: the loser re-fetches it. The
    experiment is tagged ``mlflow.experimentKind = custom_model_development`` (also when it
    exists without the tag), so that MLflow 3's UI shows it as model training, not GenAI.
    """
    import mlflow

    client = mlflow.MlflowClient()
    full_name = experiment_full_name(name)
    experiment = with_retry(client.get_experiment_by_name, full_name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            with_retry(client.restore_experiment, experiment.experiment_id)
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before the tag (a user's own choice stays)
            with_retry(client.set_experiment_tag, experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id
    root = artifact_root(uri)
    location = (root / full_name).as_uri() if root is not None else None
    try:
        return with_retry(client.create_experiment, full_name, artifact_location=location,
                          tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except Exception:
        experiment = with_retry(client.get_experiment_by_name, full_name)
        if experiment is None:
            raise
        return experiment.experiment_id
