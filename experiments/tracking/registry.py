"""The MLflow Model Registry entry every user can load and serve by name.

``anncore-fashion-mnist`` holds the baseline experiment's model (alias ``baseline``) and the
architecture search's champion (alias ``champion``), so the two can be compared and served as
``models:/anncore-fashion-mnist@champion``. An alias moves to the newest version given it.
The registry needs a database-backed store (SQLite or a tracking server with a database).
"""

from __future__ import annotations

import contextlib
import io

from experiments.tracking import store

REGISTERED_MODEL = "anncore-fashion-mnist"
CHAMPION_ALIAS = "champion"
BASELINE_ALIAS = "baseline"


def register(model_uri: str, alias: str, description: str | None = None) -> int:
    """Register ``model_uri`` as a new version of :data:`REGISTERED_MODEL` and point ``alias`` at it.

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
    # MLflow prints "Successfully registered model ..." and "Created version ..." to stderr.
    with contextlib.redirect_stderr(io.StringIO()):
        version = store.with_retry(mlflow.register_model, model_uri, REGISTERED_MODEL)
    store.with_retry(client.set_registered_model_alias, REGISTERED_MODEL, alias, version.version)
    if description:
        store.with_retry(client.update_model_version, REGISTERED_MODEL, version.version, description)
    return int(version.version)


def alias_uri(alias: str) -> str:
    """``models:/anncore-fashion-mnist@<alias>``: what ``mlflow models serve -m`` and ``load_model`` take."""
    return f"models:/{REGISTERED_MODEL}@{alias}"
