"""``mlflow server --app-name anncore-basic-auth``: MLflow's basic-auth app, started once at a time, quiet on 5xx.

Registered in the ``mlflow.app`` entry-point group (``pyproject.toml``), which is where
``mlflow server --app-name NAME`` looks apps up. Each uvicorn worker calls :func:`create_app`:

- MLflow's own ``basic-auth`` app is built under an exclusive file lock (``$ANNCORE_APP_START_LOCK``,
  set by ``start``), so workers starting together create the auth tables and the admin user one
  after another (MLflow does that once before its workers only for the app named ``basic-auth``);
- the app is wrapped in :class:`~experiments.server.quiet_errors.QuietServerErrors`, so no
  5xx response carries database details.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from experiments.server.quiet_errors import QuietServerErrors

APP_NAME = "anncore-basic-auth"
LOCK_VARIABLE = "ANNCORE_APP_START_LOCK"


@contextlib.contextmanager
def startup_lock(path: str | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the block (no lock when ``path`` is empty)."""
    if not path:
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def create_app() -> QuietServerErrors:
    """MLflow's basic-auth app (its FastAPI form, under uvicorn), built under the lock and wrapped.

    Raises
    ------
    RuntimeError
        When MLflow built its Flask (WSGI) form: this wrapper serves through uvicorn only,
        ``mlflow server``'s default.
    """
    from mlflow.server.auth import create_app as basic_auth_app

    with startup_lock(os.environ.get(LOCK_VARIABLE)):
        app = basic_auth_app()
    if hasattr(app, "wsgi_app"):
        raise RuntimeError(f"{APP_NAME} serves through uvicorn only; start mlflow server without "
                           "--gunicorn-opts or --waitress-opts")
    return QuietServerErrors(app)
