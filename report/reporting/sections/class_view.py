"""Serves report/_11-class.qmd: the teacher's view of a class server, each student side by side.

On a tracking server with accounts every student logs into ``anncore-<experiment>/<user>``.
Rendered by an admin (the teacher), the section shows per student the latest finished
``baseline`` run and the latest finished ``sweep`` parent with its champion (the child named
by the parent's tag ``anncore.champion_run_id``): test accuracy, architecture, trials run. For
anyone else (a student, or a store without accounts) it shows nothing, and the report is the
student's own as before.
"""

from __future__ import annotations

import os

import pandas as pd
from IPython.display import Markdown
from mlflow.tracking import MlflowClient

from experiments.tracking.store import EXPERIMENT_PREFIX, PASSWORD_VARIABLE, USERNAME_VARIABLE
from reporting.display import markdown_table
from reporting.i18n import _, integer
from reporting.store import open_store
from reporting.training_tables import percent

CHAMPION_TAG = "anncore.champion_run_id"


def is_teacher(tracking_uri: str) -> bool:
    """Whether this renderer is an admin of a tracking server with accounts."""
    import requests

    user = os.environ.get(USERNAME_VARIABLE)
    if not (user and tracking_uri.startswith("http")):
        return False
    try:
        response = requests.get(f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/users/current", timeout=10,
                                auth=(user, os.environ.get(PASSWORD_VARIABLE, "")))
        return bool(response.ok and response.json()["user"]["is_admin"])
    except (requests.RequestException, KeyError, ValueError):
        return False


def _latest(client, experiment_id: str, role_filter: str):
    runs = client.search_runs([experiment_id], f"attributes.status = 'FINISHED' and {role_filter}",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def student_rows(client) -> pd.DataFrame:
    """One row per student: baseline and search champion (test accuracy, architecture), trials run.

    Columns ``student``, ``baseline_test_acc``, ``baseline_architecture``, ``champion_test_acc``,
    ``champion_architecture``, ``trials``, ``test_size`` (NaN where a student has no such run).
    """
    experiments = {e.name: e.experiment_id for e in client.search_experiments(max_results=10_000)}
    students = sorted({name.rsplit("/", 1)[1] for name in experiments
                       if name.startswith(EXPERIMENT_PREFIX) and "/" in name and ".taken-" not in name})
    rows = []
    for student in students:
        row: dict[str, object] = {"student": student}
        baseline_id = experiments.get(f"{EXPERIMENT_PREFIX}baseline/{student}")
        baseline = _latest(client, baseline_id, "tags.`anncore.role` != 'child'") if baseline_id else None
        if baseline is not None:
            row["baseline_test_acc"] = baseline.data.metrics.get("final_test_acc")
            row["baseline_architecture"] = baseline.data.params.get("architecture")
            row["test_size"] = baseline.data.params.get("dataset_test_size")
        sweep_id = experiments.get(f"{EXPERIMENT_PREFIX}sweep/{student}")
        parent = _latest(client, sweep_id, "tags.`anncore.role` = 'parent'") if sweep_id else None
        if parent is not None and parent.data.tags.get(CHAMPION_TAG):
            champion = client.get_run(parent.data.tags[CHAMPION_TAG])
            row["champion_test_acc"] = champion.data.metrics.get("final_test_acc")
            row["champion_architecture"] = champion.data.params.get("architecture")
            row["trials"] = parent.data.metrics.get("n_trials")
        if len(row) > 1:
            rows.append(row)
    columns = ["student", "baseline_test_acc", "baseline_architecture", "champion_test_acc",
               "champion_architecture", "trials", "test_size"]
    return pd.DataFrame(rows, columns=columns)


def class_section() -> Markdown:
    """The class section (heading, sentence, table) for a teacher; empty Markdown otherwise."""
    store = open_store()
    if not is_teacher(store.tracking_uri):
        return Markdown("")
    rows = student_rows(MlflowClient(store.tracking_uri))
    if rows.empty:
        return Markdown("")

    def shown(value: object, as_percent: bool = False) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "—"
        return percent(float(value), 1) if as_percent else str(value)

    table = pd.DataFrame({
        _("student"): rows["student"],
        _("baseline, test accuracy"): [shown(v, True) for v in rows["baseline_test_acc"]],
        _("baseline architecture"): [shown(v) for v in rows["baseline_architecture"]],
        _("champion, test accuracy"): [shown(v, True) for v in rows["champion_test_acc"]],
        _("champion architecture"): [shown(v) for v in rows["champion_architecture"]],
        _("trials"): [shown(integer(v)) if pd.notna(v) else "—" for v in rows["trials"]],
    })
    sizes = sorted({str(size) for size in rows["test_size"].dropna()})
    same = (_("every accuracy on the same {n} test images").format(n=integer(float(sizes[0])))
            if len(sizes) == 1 else _("the students' test sets differ in size: {sizes}").format(sizes=", ".join(sizes)))
    text = _("Each student's latest finished baseline run and search champion on this server ({same}).").format(
        same=same)
    heading, caption = _("The class"), _("The class, side by side")
    return Markdown(f"# {heading}\n\n{text}\n\n{markdown_table(table, caption, 'class-champions')}")
