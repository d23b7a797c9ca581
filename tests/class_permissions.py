"""What a second student, and an attacking one, can and cannot do on the class server: the tables.

``tests/test_class_server.py`` runs every row against a real PostgreSQL and a real MLflow server
and records what it measured here; its last test prints the rows as one Markdown table (and
writes it to ``$ANNCORE_PERMISSION_TABLE`` when set), so the table in a note is the measurement.
"""

from __future__ import annotations

import os
from pathlib import Path

# (what bob, the attacker, tries on alice's things; account; method; REST path; body or query with
# {run}, {experiment}, {model}, {version} filled in; expected HTTP status)
API = "/api/2.0/mlflow"
API3 = "/api/3.0/mlflow"
REST_ATTEMPTS = [
    ("read alice's run", "bob", "GET", f"{API}/runs/get", {"run_id": "{run}"}, 200),
    ("end alice's run", "bob", "POST", f"{API}/runs/update", {"run_id": "{run}", "status": "FAILED"}, 403),
    ("log a metric to alice's run", "bob", "POST", f"{API}/runs/log-metric",
     {"run_id": "{run}", "key": "test_acc", "value": 1.0, "timestamp": 0, "step": 0}, 403),
    ("tag alice's run", "bob", "POST", f"{API}/runs/set-tag", {"run_id": "{run}", "key": "graded", "value": "0"}, 403),
    ("delete alice's run", "bob", "POST", f"{API}/runs/delete", {"run_id": "{run}"}, 403),
    ("create a run in alice's experiment", "bob", "POST", f"{API}/runs/create", {"experiment_id": "{experiment}"}, 403),
    ("rename alice's experiment", "bob", "POST", f"{API}/experiments/update",
     {"experiment_id": "{experiment}", "new_name": "bobs-now"}, 403),
    ("delete alice's experiment", "bob", "POST", f"{API}/experiments/delete", {"experiment_id": "{experiment}"}, 403),
    ("rename alice's registered model", "bob", "POST", f"{API}/registered-models/rename",
     {"name": "{model}", "new_name": "bobs-model"}, 403),
    ("delete alice's registered model", "bob", "DELETE", f"{API}/registered-models/delete", {"name": "{model}"}, 403),
    ("add a version to alice's model", "bob", "POST", f"{API}/model-versions/create",
     {"name": "{model}", "source": "mlflow-artifacts:/bob", "run_id": "{run}"}, 403),
    ("point alice's @champion elsewhere", "bob", "POST", f"{API}/registered-models/alias",
     {"name": "{model}", "alias": "champion", "version": "{version}"}, 403),
    ("delete alice's @champion", "bob", "DELETE", f"{API}/registered-models/alias",
     {"name": "{model}", "alias": "champion"}, 403),
    ("change alice's password", "bob", "PATCH", f"{API}/users/update-password",
     {"username": "alice", "password": "bob-chose-this-01"}, 403),
    ("make himself admin", "bob", "PATCH", f"{API}/users/update-admin", {"username": "bob", "is_admin": True}, 403),
    ("grant himself MANAGE on alice's experiment", "bob", "POST", f"{API3}/users/permissions/grant",
     {"username": "bob", "resource_type": "experiment", "resource_id": "{experiment}", "permission": "MANAGE"}, 403),
    ("grant himself MANAGE on alice's model", "bob", "POST", f"{API}/registered-models/permissions/create",
     {"name": "{model}", "username": "bob", "permission": "MANAGE"}, 403),
    ("create a role", "bob", "POST", f"{API3}/roles/create", {"name": "graders", "workspace": "default"}, 403),
    ("delete alice's account", "bob", "DELETE", f"{API}/users/delete", {"username": "alice"}, 403),
    ("create an account", "bob", "POST", f"{API}/users/create", {"username": "mallory", "password": "mallory-pass-01"},
     403),
    ("end his own run", "bob", "POST", f"{API}/runs/update", {"run_id": "{own_run}", "status": "FINISHED"}, 200),
    ("no credentials: search experiments", None, "POST", f"{API}/experiments/search", {"max_results": 1}, 401),
    ("wrong password: search experiments", "wrong", "POST", f"{API}/experiments/search", {"max_results": 1}, 401),
    ("no credentials: end alice's run", None, "POST", f"{API}/runs/update", {"run_id": "{run}", "status": "FAILED"},
     401),
]

MEASURED: list[tuple[str, str, str, str]] = []  # (group, what, expected, measured), in the order run


def fill(value: object, ids: dict[str, str]) -> object:
    """``value`` with ``{run}``-style placeholders in its strings replaced from ``ids``."""
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    return value


def record(group: str, what: str, expected: str, measured: str) -> None:
    """Keep one measured row for the printout (a row measured twice keeps its last result)."""
    MEASURED[:] = [row for row in MEASURED if row[:2] != (group, what)]
    MEASURED.append((group, what, expected, " ".join(measured.split())[:160]))


def markdown() -> str:
    """The measured rows as one Markdown table."""
    lines = ["| who, through what | tries to | expected | measured |", "| --- | --- | --- | --- |"]
    for group, what, expected, measured in MEASURED:
        lines.append(f"| {group} | {what} | {expected} | {measured.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write_table() -> str:
    """Print the table and write it to ``$ANNCORE_PERMISSION_TABLE`` when that is set; returns it."""
    table = markdown()
    print("\n" + table)
    if path := os.environ.get("ANNCORE_PERMISSION_TABLE"):
        Path(path).write_text(table)
    return table
