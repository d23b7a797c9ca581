"""The MLflow Model Registry entry every user can load and serve by name.

``anncore-fashion-mnist`` holds the baseline experiment's model (alias ``baseline``) and the
architecture search's champion (alias ``champion``), so the two can be compared and served as
``models:/anncore-fashion-mnist@champion``. An alias moves to the newest version given it.
The registry needs a database-backed store (SQLite or a tracking server with a database).
On a server with accounts each student has their own, ``anncore-fashion-mnist-<user>``: a
registered model belongs to whoever made it, so one shared name served only the first student.
"""

from __future__ import annotations

import contextlib
import io

from experiments.tracking import store

REGISTERED_MODEL = "anncore-fashion-mnist"
CHAMPION_ALIAS = "champion"
BASELINE_ALIAS = "baseline"


def registered_model_name() -> str:
    """:data:`REGISTERED_MODEL`, or ``anncore-fashion-mnist-<user>`` on a server with accounts."""
    import os

    import mlflow

    user = os.environ.get(store.USERNAME_VARIABLE)
    if user and mlflow.get_tracking_uri().startswith("http"):
        return f"{REGISTERED_MODEL}-{user}"
    return REGISTERED_MODEL


def register(model_uri: str, alias: str, description: str | None = None) -> int:
    """Register ``model_uri`` as a new version of :func:`registered_model_name` and point ``alias`` at it.

    Parameters
    ----------
    model_uri : str
        What ``log_model`` returned as ``ModelInfo.model_uri``.
    alias : str
        ``"champion"`` or ``"baseline"``.
    description : str, optional
        The version's description in the registry.

    Returns
    -------
    int
        The new version number.
    """
    import mlflow

    client = mlflow.MlflowClient()
    name = registered_model_name()
    # MLflow prints "Successfully registered model ..." and "Created version ..." to stderr.
    with contextlib.redirect_stderr(io.StringIO()):
        version = store.with_retry(mlflow.register_model, model_uri, name)
    store.with_retry(client.set_registered_model_alias, name, alias, version.version)
    if description:
        store.with_retry(client.update_model_version, name, version.version, description)
    return int(version.version)


def alias_uri(alias: str) -> str:
    """``models:/<registered model>@<alias>``: what ``mlflow models serve -m`` and ``load_model`` take."""
    return f"models:/{registered_model_name()}@{alias}"
