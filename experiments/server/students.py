"""A student's account on the class server: MLflow user, database role, Optuna databases, experiments.

``add-user NAME`` gives the student

- an MLflow account (default permission READ: they read everyone's runs, change their own);
- the experiments the suite logs into, ``anncore-<experiment>/NAME``, created up front (by the
  admin) with the student as their manager (MANAGE), so nobody can take the names first;
- a PostgreSQL role ``optuna_NAME`` that owns a database ``optuna_NAME`` (their own studies) and
  may write the class's shared study database ``optuna``, and nothing else: it cannot connect to
  MLflow's databases or to another student's;
- that role's password as a libpq password file, ``FOLDER/students/NAME.pgpass`` (0600), which the
  teacher hands over.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from experiments.server.postgres import DATABASES, STUDENT_PREFIX, Cluster
from experiments.settings import UserInputError

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
RESERVED = ("admin", "anncore", "postgres", "students")


def check_username(name: str) -> str:
    """Return ``name`` if it can name an account, a database role and a file; UserInputError otherwise."""
    if not USERNAME_PATTERN.match(name) or name in RESERVED:
        raise UserInputError(
            f"user name {name!r} is not accepted; accepted: 1 to 30 lower-case Latin letters, digits or '_', "
            f"starting with a letter, other than {', '.join(RESERVED)} (it also names the database role "
            f"{STUDENT_PREFIX}<name>)"
        )
    return name


def role_of(name: str) -> str:
    """The student's database role, also the name of their own Optuna database."""
    return STUDENT_PREFIX + name


def passfile_of(folder: Path, name: str) -> Path:
    return folder / "students" / f"{name}.pgpass"


def write_passfile(folder: Path, cluster: Cluster, name: str, password: str) -> Path:
    """``FOLDER/students/NAME.pgpass``: the role's password for its own database and the shared one."""
    import os

    students = folder / "students"
    students.mkdir(mode=0o700, exist_ok=True)
    students.chmod(0o700)
    path = passfile_of(folder, name)
    path.unlink(missing_ok=True)
    role = role_of(name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        for database in (role, DATABASES["optuna"]):
            handle.write(f"*:{cluster.port}:{database}:{role}:{password}\n")
    return path


def set_passfile_port(path: Path, port: int) -> None:
    """Rewrite the port of every line of a password file (``host:port:database:role:password``)."""
    lines = [line.split(":", 4) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(f"{host}:{port}:{rest}\n" for host, _, *more in lines for rest in [":".join(more)]))
    path.chmod(0o600)


def create_optuna_tables(url: str, passfile: Path) -> None:
    """Let Optuna create its tables in ``url`` now, once, so two students' first searches cannot race.

    Two processes opening an empty database at once both run Optuna's ``CREATE TABLE``; one got
    ``DuplicateTable "alembic_version"``.
    """
    import optuna

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"passfile": str(passfile)}})
    storage.engine.dispose()


def add_database_account(folder: Path, cluster: Cluster, name: str) -> Path:
    """Create (or renew the password of) the student's role and database; returns their password file."""
    password = secrets.token_urlsafe(24)
    role = role_of(name)
    cluster.add_student(role, password)
    path = write_passfile(folder, cluster, name, password)
    create_optuna_tables(cluster.url(role, role=role), path)
    return path


def storage_urls(cluster: Cluster, name: str, host: str) -> dict[str, str]:
    """The student's Optuna storage URLs (no password: libpq reads it from their password file)."""
    role = role_of(name)
    return {database: f"postgresql+psycopg://{role}@{host}:{cluster.port}/{database}"
            for database in (role, DATABASES["optuna"])}


def experiment_names(name: str) -> list[str]:
    """The experiments the suite logs into for ``name`` on a server with accounts."""
    from experiments.studies import EXPERIMENT_NAMES
    from experiments.tracking.store import EXPERIMENT_PREFIX

    return [f"{EXPERIMENT_PREFIX}{experiment}/{name}" for experiment in EXPERIMENT_NAMES]


def _permission(api: str, admin: tuple[str, str], name: str, resource_type: str, resource_id: str) -> str:
    """``name``'s effective permission on a resource (``MANAGE``, ``EDIT``, ``READ``, ...)."""
    import requests

    response = requests.get(f"{api.replace('/2.0/', '/3.0/')}/users/permissions/get", auth=admin, timeout=30,
                            params={"username": name, "resource_type": resource_type, "resource_id": resource_id})
    response.raise_for_status()
    return response.json()["permission"]


def _grant_manage(api: str, admin: tuple[str, str], name: str, resource_type: str, resource_id: str) -> None:
    import requests

    requests.post(f"{api.replace('/2.0/', '/3.0/')}/users/permissions/grant", auth=admin, timeout=30, json={
        "username": name, "resource_type": resource_type, "resource_id": resource_id,
        "permission": "MANAGE"}).raise_for_status()


def _claim_experiment(api: str, admin: tuple[str, str], name: str, experiment: str) -> str | None:
    """Make ``experiment`` the student's; returns what was renamed away, if anything."""
    import requests

    from experiments.tracking.store import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    renamed = None
    existing = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": experiment},
                            auth=admin, timeout=30)
    if existing.status_code == 200:
        experiment_id = existing.json()["experiment"]["experiment_id"]
        if _permission(api, admin, name, "experiment", experiment_id) == "MANAGE":
            return None  # theirs already
        renamed = f"{experiment}.taken-{experiment_id}"
        requests.post(f"{api}/experiments/update", json={"experiment_id": experiment_id, "new_name": renamed},
                      auth=admin, timeout=30).raise_for_status()
    created = requests.post(f"{api}/experiments/create", auth=admin, timeout=30, json={
        "name": experiment, "tags": [{"key": EXPERIMENT_KIND_TAG, "value": EXPERIMENT_KIND}]})
    created.raise_for_status()
    _grant_manage(api, admin, name, "experiment", created.json()["experiment_id"])
    return renamed


def _claim_model(api: str, admin: tuple[str, str], name: str, model: str) -> str | None:
    """Make registered model ``model`` the student's; returns what was renamed away, if anything."""
    import requests

    renamed = None
    if requests.get(f"{api}/registered-models/get", params={"name": model}, auth=admin, timeout=30).ok:
        if _permission(api, admin, name, "registered_model", model) == "MANAGE":
            return None
        renamed = f"{model}.taken-{secrets.token_hex(3)}"
        requests.post(f"{api}/registered-models/rename", json={"name": model, "new_name": renamed},
                      auth=admin, timeout=30).raise_for_status()
    requests.post(f"{api}/registered-models/create", json={"name": model}, auth=admin,
                  timeout=30).raise_for_status()
    _grant_manage(api, admin, name, "registered_model", model)
    return renamed


def claim_experiments(url: str, name: str, admin: tuple[str, str]) -> list[str]:
    """Create the student's experiments and registered model, with the student as their manager.

    One of those names that the student does not manage (someone made it first) is renamed by
    the admin to ``<name>.taken-<id>`` (its runs stay readable there) and a new one is made for
    the student. Running this again changes nothing.

    Returns
    -------
    list of str
        One line per name taken back.
    """
    from experiments.tracking.registry import REGISTERED_MODEL

    api = f"{url}/api/2.0/mlflow"
    taken_back = []
    for experiment in experiment_names(name):
        if (renamed := _claim_experiment(api, admin, name, experiment)) is not None:
            taken_back.append(f"{experiment} (the one made first is now {renamed})")
    model = f"{REGISTERED_MODEL}-{name}"
    if (renamed := _claim_model(api, admin, name, model)) is not None:
        taken_back.append(f"{model} (the one made first is now {renamed})")
    return taken_back
