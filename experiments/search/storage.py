"""Where the architecture search keeps its Optuna study: check, default and open the storage.

The storage is Optuna's RDB storage: a SQLite file for one machine (the default,
``optuna.db`` next to the MLflow store's database) or a PostgreSQL database shared by several
machines (``postgresql+psycopg://user:password@host:port/db``). It is opened with a heartbeat,
so a trial whose worker died (killed, machine lost) is marked FAIL by the next worker that
starts a trial, instead of staying RUNNING forever.

Storage URLs can hold passwords: they are logged only without it (the parent run's
``anncore.sweep_options`` tag), and messages show them redacted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from experiments.settings import UserInputError
from experiments.tracking.store import first_line, host_lock, sqlite_database_path

SQLITE_SCHEMES = ("sqlite",)
POSTGRESQL_SCHEMES = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
ACCEPTED = "accepted: sqlite:///path/optuna.db or postgresql+psycopg://user:password@host:port/database"
STUDY_DB = "optuna.db"
STUDY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Why these values: a live worker beats every HEARTBEAT_INTERVAL_S; a trial silent for
# GRACE_PERIOD_S is taken for dead. Short enough that a killed worker's trial is failed within
# seconds, long enough that a loaded 2-core machine never misses three beats in a row.
HEARTBEAT_INTERVAL_S = 2
GRACE_PERIOD_S = 8
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 60


def check_study_name(text: str) -> str:
    """Return ``text`` if it is a study name of letters, digits, ``.``, ``_``, ``-`` (at most 100)."""
    if not STUDY_NAME_PATTERN.match(text):
        raise ValueError(
            f"study name {text!r} is not accepted; accepted: 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, such as fashion-mnist"
        )
    return text


def storage_scheme(url: str) -> str:
    """The URL's scheme, e.g. ``"sqlite"`` or ``"postgresql+psycopg"`` (what is logged, never the URL)."""
    return urlsplit(url).scheme.lower()


def check_storage_url(url: str) -> str:
    """Return ``url`` if it is a SQLite or PostgreSQL URL Optuna can use; ``ValueError`` otherwise."""
    scheme = storage_scheme(url)
    if scheme in SQLITE_SCHEMES:
        if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
            raise ValueError(f"storage {url!r} names no database file; {ACCEPTED}")
        return url
    if scheme in POSTGRESQL_SCHEMES:
        if not urlsplit(url).hostname or not urlsplit(url).path.strip("/"):
            raise ValueError(f"storage {redacted(url)!r} needs a host and a database name; {ACCEPTED}")
        return url
    shown = scheme or "none"
    raise ValueError(f"storage {redacted(url)!r} has unsupported scheme {shown!r}; {ACCEPTED}")


def sqlite_file(url: str) -> Path | None:
    """The absolute database file of a ``sqlite:///`` storage URL; None for other schemes."""
    if storage_scheme(url) not in SQLITE_SCHEMES:
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0]).expanduser().resolve()


def without_password(url: str) -> str:
    """``url`` with its password left out (what may be written down: a password comes from PGPASSFILE instead)."""
    return _password_replaced(url, "")


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return _password_replaced(url, ":***")


def _password_replaced(url: str, replacement: str) -> str:
    """``url`` with ``:<password>`` in its network location replaced by ``replacement``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f"{replacement}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def default_storage_url(tracking_uri: str) -> str:
    """Where a study lives when ``--storage`` is not given.

    Beside an SQLite MLflow store: ``optuna.db`` in the database's folder (``mlruns/optuna.db``
    for the default store). With a tracking server there is no such folder, and the current one
    must stay clean, so the study goes to the user's data folder, one file per server:
    ``$XDG_DATA_HOME/anncore/optuna-<host>-<port>.db`` (``~/.local/share/...`` by default). To
    share a search between machines, pass the class server's PostgreSQL database as ``--storage``.
    """
    import os


    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{sqlite_database_path(tracking_uri).parent / STUDY_DB}"
    server = re.sub(r"[^A-Za-z0-9.]+", "-", urlsplit(tracking_uri).netloc.rsplit("@", 1)[-1]).strip("-") or "server"
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    folder = data_home / "anncore"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / f'optuna-{server}.db'}"


def _engine_kwargs(url: str) -> dict[str, object]:
    if storage_scheme(url) in SQLITE_SCHEMES:
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}


# Two processes creating Optuna's tables in one new database at once: the loser's CREATE TABLE or
# its alembic_version row collides (PostgreSQL: DuplicateTable/UniqueViolation; SQLite: "table ...
# already exists" or "UNIQUE constraint failed: alembic_version...").
CREATION_RACE = re.compile(r"DuplicateTable|UniqueViolation|already exists|UNIQUE constraint failed", re.I)
CREATION_ATTEMPTS = 3

OPEN_FAILURE_HINTS = (  # (pattern in the error, what to do), first match wins
    (CREATION_RACE,
     "another process was creating Optuna's tables in this new database at the same time; run again "
     "(a class server creates them when it starts and in add-user)"),
    (re.compile(r"password authentication failed|no password supplied", re.I),
     "the password was refused or missing: set PGPASSFILE to the password file you were given "
     "(mode 0600), or put the password in the URL"),
    (re.compile(r"permission denied|pg_hba.conf rejects|no pg_hba.conf entry|not permitted", re.I),
     "this role may not use that database: on a class server, your own optuna_<user> database or the "
     "shared optuna one"),
)


def open_failure_hint(error: BaseException) -> str:
    """What to do about ``error`` from opening a storage: the real cause's remedy, else the accepted URLs."""
    text = str(error) + type(error).__name__ + type(getattr(error, "orig", None)).__name__
    for pattern, hint in OPEN_FAILURE_HINTS:
        if pattern.search(text):
            return hint
    return f"{ACCEPTED}, reachable from this machine"


def open_storage(url: str, failed_trial_callback: Callable | None = None):
    """Open (creating its tables if needed) the RDB storage at ``url``, with the heartbeat on.

    Parameters
    ----------
    url : str
        A URL accepted by :func:`check_storage_url`.
    failed_trial_callback : callable, optional
        ``(study, frozen_trial)``, called for each stale trial this process marks FAIL.

    Raises
    ------
    UserInputError
        The database cannot be reached or opened, or its driver is not installed.
    """
    import warnings

    import optuna

    # The heartbeat has been "experimental" since Optuna 2.9; it is what finds dead workers' trials.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    check_storage_url(url)
    if storage_scheme(url) in SQLITE_SCHEMES:
        folder = sqlite_file(url).parent
        if not folder.is_dir():
            raise UserInputError(f"storage {url!r}: folder {folder} does not exist; {ACCEPTED} in an existing folder")
    try:
        return _created_storage(url, failed_trial_callback)
    except ModuleNotFoundError as error:
        raise UserInputError(
            f"storage {redacted(url)!r} needs the Python package {error.name!r}, which is not installed; "
            "use postgresql+psycopg://... (psycopg is a dependency) or install it"
        ) from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's OperationalError, ArgumentError, ...

        raise UserInputError(
            f"cannot open the Optuna storage {redacted(url)!r}: {type(error).__name__}: "
            f"{first_line(error)}; {open_failure_hint(error)}"
        ) from None


def _created_storage(url: str, failed_trial_callback: Callable | None):
    """An RDB storage at ``url`` (its writes held from signals), its tables created by one process at a time.

    Why both a lock and a retry: processes of this machine (two suites on one new SQLite store)
    take turns under :func:`host_lock`; processes of other machines cannot share that lock, so a
    creation race that still happens (see ``CREATION_RACE``) is retried: the tables exist by then.
    """
    from experiments.search.held_storage import HeldRDBStorage

    for attempt in range(1, CREATION_ATTEMPTS + 1):
        try:
            with host_lock(f"optuna-storage:{without_password(url)}"):
                return HeldRDBStorage(
                    url,
                    engine_kwargs=_engine_kwargs(url),
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=GRACE_PERIOD_S,
                    heartbeat_stale_trial_callback=failed_trial_callback,
                )
        except Exception as error:  # noqa: BLE001 - SQLAlchemy's IntegrityError, ProgrammingError, ...
            if attempt == CREATION_ATTEMPTS or not CREATION_RACE.search(f"{type(error).__name__} {error}"):
                raise
    raise AssertionError("unreachable")
