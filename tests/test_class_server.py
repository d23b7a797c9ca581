"""The class server (issue 13): MLflow on a real PostgreSQL cluster with accounts, under load and faults.

One cluster and one ``mlflow server --app-name basic-auth`` are started for the whole module in
a temporary folder on free loopback ports (never the system's default port or data folder), and
stopped at the end even when a test fails. The tests run in file order: the last ones restart
the database, stop the server and restore a backup.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from experiments.server import class_server, load
from experiments.server.postgres import DATABASES, Cluster
from experiments.tracking import liveness
from reporting.sections import class_view
from tests import class_permissions, open_python
from tests.external_tools import requires
from tests.mlflow_processes import free_port, run_cli

pytestmark = requires("postgresql")

ADMIN_PASSWORD = "teacher-secret-0001"
STUDENTS = {"alice": "alice-password-01", "bob": "bob-password-0002"}


def start_server(folder: Path, admin_file: Path, port: int | None = None) -> class_server.ServerConfig:
    """``start`` with accounts on loopback; as root, the MLflow server runs as anncore-mlflow.

    When this Python sits where that user cannot go (a venv under /root), ``start`` runs from
    a copy of it that other users may run (:mod:`tests.open_python`).
    """
    if not open_python.needed():
        return class_server.start(folder, port=port or free_port(), workers=2, auth=True,
                                  admin_password_file=admin_file)
    python, environment = open_python.open_python()
    done = subprocess.run([python, "-m", "experiments.server", "start", "--folder", str(folder), "--port",
                           str(port or free_port()), "--workers", "2", "--auth", "--admin-password-file",
                           str(admin_file)], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return class_server.load_config(folder)


@pytest.fixture(scope="module")
def server():
    """A class server with accounts on loopback (``--auth``) and two students; stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="anncore-class-server-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, who must enter it
    (folder / "admin.txt").write_text(ADMIN_PASSWORD + "\n")
    root = folder / "server"
    try:
        config = start_server(root, folder / "admin.txt")
        added = {name: class_server.add_user(root, name, password, ADMIN_PASSWORD)
                 for name, password in STUDENTS.items()}
        yield {"url": config.url, "folder": root, "config": config, "tmp": folder, "added": added}
    finally:
        with contextlib.suppress(Exception):
            class_server.stop(root)
        shutil.rmtree(folder, ignore_errors=True)


def account(name: str | None, password: str | None = None) -> dict[str, str]:
    """The environment of a client logged in as ``name`` (the admin, a student, or nobody)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    if name is not None:
        env["MLFLOW_TRACKING_USERNAME"] = name
        env["MLFLOW_TRACKING_PASSWORD"] = password or (ADMIN_PASSWORD if name == "admin" else STUDENTS[name])
    return {**env, "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def logged_in(monkeypatch, name: str | None, password: str | None = None):
    """Set this process's MLflow credentials for the block (MLflow reads them on every request)."""
    with monkeypatch.context() as patch:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            patch.delenv(key, raising=False)
        if name is not None:
            patch.setenv("MLFLOW_TRACKING_USERNAME", name)
            patch.setenv("MLFLOW_TRACKING_PASSWORD",
                         password or (ADMIN_PASSWORD if name == "admin" else STUDENTS[name]))
        yield


def client(url: str):
    from mlflow import MlflowClient

    return MlflowClient(url)


def runs_in(url: str, experiment_name: str):
    c = client(url)
    experiment = c.get_experiment_by_name(experiment_name)
    return [] if experiment is None else c.search_runs([experiment.experiment_id])


# --- the server ------------------------------------------------------------------------------

def _command_line(pid: str) -> str:
    """Process ``pid``'s command line, or "" when it ended while /proc was being read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:  # ProcessLookupError, FileNotFoundError: the process is gone
        return ""


def test_the_server_keeps_its_runs_in_postgresql_and_no_secret_anywhere(server):
    import psycopg

    info = class_server.status(server["folder"])
    assert info["mlflow_running"] and info["postgresql_running"] and info["auth"]
    assert info["class_study_storage"].startswith("postgresql+psycopg://optuna_<user>@127.0.0.1:")
    assert info["students"] == "alice, bob"
    cluster = Cluster(server["folder"], server["config"].db_port)
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user="anncore", dbname="mlflow",
                         password=cluster.password()) as connection:  # MLflow's schema is there
        names = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables")}
    assert {*DATABASES.values(), "optuna_alice", "optuna_bob"} <= names
    assert {"experiments", "runs", "metrics", "params", "tags"} <= tables
    # Nothing secret in the auth configuration, the logs or any process's command line.
    folder = server["folder"]
    texts = [(folder / "basic_auth.ini").read_text(), (folder / "logs" / "mlflow.log").read_text(),
             (folder / "logs" / "postgresql.log").read_text(), (folder / "server.json").read_text()]
    texts += [command_line for pid in os.listdir("/proc") if pid.isdigit() and (command_line := _command_line(pid))]
    student_passwords = [path.read_text().split(":")[-1].strip() for path in (folder / "students").iterdir()]
    assert len(student_passwords) == 2
    for secret in (ADMIN_PASSWORD, cluster.password(), *STUDENTS.values(), *student_passwords):
        assert not any(secret in text for text in texts)
    assert "default_permission = READ" in texts[0]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_secrets_logs_and_backups_are_closed_to_other_local_users(server, tmp_path):
    folder = server["folder"]
    for secret in ("pgpass", "basic_auth.ini", "flask-secret", "logs/mlflow.log", "logs/postgresql.log",
                   "students/alice.pgpass", "students/bob.pgpass"):
        assert _mode(folder / secret) == 0o600, secret
    assert _mode(folder / "students") == 0o700
    assert _mode(folder / "logs") & 0o007 == 0 and not _mode(folder / "logs") & 0o020  # no other, no group write
    written = class_server.backup(folder, tmp_path / "backup")
    assert _mode(tmp_path / "backup") == 0o700
    assert {_mode(path) for path in written} == {0o600}
    # The server's own process: as root it runs as anncore-mlflow, unless this Python is closed to it.
    import psutil

    leader = psutil.Process(server["config"].mlflow_pid)
    users = {process.username() for process in [leader, *leader.children(recursive=True)]}
    expected = class_server.SERVICE_USER if os.geteuid() == 0 else psutil.Process().username()
    assert users == {expected} and len(leader.children(recursive=True)) >= 3  # uvicorn and its 2 workers
    class_permissions.record("the MLflow server", "run as", expected, f"{len(users)} user for "
                             f"{1 + len(leader.children(recursive=True))} processes: {', '.join(users)}")


def test_a_log_swapped_for_a_link_is_refused_not_followed(tmp_path):
    target = tmp_path / "precious"
    target.write_text("kept\n")
    (tmp_path / "mlflow.log").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        class_server.open_private_log(tmp_path / "mlflow.log")
    assert target.read_text() == "kept\n"
    with class_server.open_private_log(tmp_path / "fresh.log") as log:
        log.write("line\n")
    assert _mode(tmp_path / "fresh.log") == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="another local user is tried through runuser, as root")
@pytest.mark.parametrize("what, command", [
    ("read the server's database password", "cat {folder}/pgpass"),
    ("read alice's database password", "cat {folder}/students/alice.pgpass"),
    ("read the MLflow log", "cat {folder}/logs/mlflow.log"),
    ("list the logs folder", "ls {folder}/logs"),
    ("plant a link in the logs folder", "ln -s /etc/passwd {folder}/logs/planted"),
    ("read the admin's session key", "cat {folder}/flask-secret"),
    ("read the auth configuration", "cat {folder}/basic_auth.ini"),
    ("read a backup of mlflow_auth", "cat {backup}/mlflow_auth.dump"),
    ("list the backup", "ls {backup}"),
])
def test_another_local_user_reads_no_server_file(server, what, command):
    backup = server["tmp"] / "backup-for-others"  # beside the server folder, in a folder others may enter
    if not backup.is_dir():
        class_server.backup(server["folder"], backup)
    shell = command.format(folder=server["folder"], backup=backup)
    done = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", shell], capture_output=True, text=True,
                          timeout=30)
    class_permissions.record("another local OS user (`nobody`)", f"{what} (`{shell.split()[0]}`)", "refused",
                             f"exit {done.returncode}: {done.stderr.strip().split(': ', 1)[-1]}")
    assert done.returncode != 0 and "Permission denied" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the service user is for a server started as root")
def test_as_root_a_python_closed_to_the_service_user_is_one_clear_error(monkeypatch):
    closed = class_server.closed_to_others()
    if closed is None:
        pytest.skip("this Python is open to other users: the server fixture runs as anncore-mlflow")
    with pytest.raises(class_server.UserInputError, match=rf"cannot enter {re.escape(str(closed))} .*--as-root"):
        class_server.check_service_user_can_run(as_root=False)
    class_server.check_service_user_can_run(as_root=True)


# --- what a student's database credentials reach ----------------------------------------------

def _student_connect(server, name: str, database: str, role: str | None = None):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=server["config"].db_port, user=role or f"optuna_{name}",
                           dbname=database, passfile=str(server["added"][name]["passfile"]), connect_timeout=10,
                           autocommit=True)


REFUSED = "refused"
# (who, database, SQL run there or None for just connecting, expected): alice is the attacker.
DATABASE_PERMISSIONS = [
    ("alice", "mlflow", None, REFUSED),
    ("alice", "mlflow_auth", None, REFUSED),
    ("alice", "postgres", None, REFUSED),
    ("alice", "template1", None, REFUSED),
    ("alice", "optuna_bob", None, REFUSED),
    ("alice", "optuna_alice", "CREATE TABLE notes (x int); DROP TABLE notes", "ok"),
    ("alice", "optuna", "SELECT count(*) FROM studies", "ok"),
    ("alice", "optuna", "DROP TABLE studies", REFUSED),
    ("alice", "optuna", "CREATE TABLE squat (x int)", REFUSED),
    ("alice", "optuna", "ALTER ROLE anncore PASSWORD 'locked-out-0001'", REFUSED),
    ("alice", "optuna", "ALTER ROLE optuna_bob PASSWORD 'taken-over-0001'", REFUSED),
    ("alice", "optuna", "DROP DATABASE mlflow", REFUSED),
    ("alice", "optuna", "DROP DATABASE optuna_bob", REFUSED),
    ("alice", "optuna", "CREATE DATABASE mine", REFUSED),
    ("alice", "optuna", "CREATE ROLE helper LOGIN SUPERUSER", REFUSED),
    ("alice", "optuna", "GRANT anncore TO optuna_alice", REFUSED),
    ("alice", "optuna", "ALTER TABLE studies ADD COLUMN note text", REFUSED),
    ("alice", "optuna", "SELECT pg_read_file('pg_hba.conf')", REFUSED),
    ("alice", "optuna", "SELECT rolpassword FROM pg_authid", REFUSED),
    ("alice", "optuna", "COPY (SELECT 1) TO PROGRAM 'id'", REFUSED),
    ("alice", "optuna_alice", "GRANT CONNECT ON DATABASE optuna_bob TO optuna_alice", REFUSED),
    ("alice", "optuna_alice", "GRANT CONNECT ON DATABASE mlflow_auth TO optuna_alice", REFUSED),
]


@pytest.mark.parametrize("who, database, statement, expected", DATABASE_PERMISSIONS)
def test_a_students_database_password_reaches_only_optuna_data(server, who, database, statement, expected):
    import psycopg

    try:
        with _student_connect(server, who, database) as connection:
            if statement:
                for part in statement.split("; "):
                    connection.execute(part)
        outcome, measured = "ok", "done"
    except psycopg.Error as error:
        outcome, measured = REFUSED, str(error).strip().splitlines()[0]
        assert re.search(r"permission denied|must be|rejects connection|no pg_hba.conf entry|not allowed|"
                         r"must have|only superusers", str(error)), str(error)
    class_permissions.record(f"{who}'s `.pgpass` password, psycopg", f"`{statement or 'connect'}` in `{database}`",
                             expected, measured)
    assert outcome == expected


@pytest.mark.parametrize("role", ["anncore", "optuna_bob", "postgres"])
def test_a_students_password_is_no_one_elses(server, role):
    """Alice's password file holds her password: tried as another role it is refused."""
    import psycopg

    password = server["added"]["alice"]["passfile"].read_text().split(":")[-1].strip()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed|rejects connection|"
                                                       "no pg_hba.conf entry") as refused:
        psycopg.connect(host="127.0.0.1", port=server["config"].db_port, user=role, dbname="optuna",
                        password=password, connect_timeout=10)
    class_permissions.record("alice's `.pgpass` password, psycopg", f"log in as role `{role}`", REFUSED,
                             str(refused.value).strip().splitlines()[-1])


def test_students_share_the_class_study_and_keep_their_own(server, monkeypatch):
    import optuna

    def storage(name: str, database: str):
        monkeypatch.setenv("PGPASSFILE", str(server["added"][name]["passfile"]))
        return optuna.storages.RDBStorage(server["added"][name]["storage"][database])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    own = optuna.create_study(study_name="mine", storage=storage("bob", "optuna_bob"))
    own.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    shared = optuna.create_study(study_name="class-search", storage=storage("alice", "optuna"),
                                 load_if_exists=True)
    shared.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    joined = optuna.load_study(study_name="class-search", storage=storage("bob", "optuna"))
    joined.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="class-search", storage=storage("alice", "optuna")).trials) == 2
    assert len(optuna.load_study(study_name="mine", storage=storage("bob", "optuna_bob")).trials) == 2
    # Bob's own study is out of Alice's reach: her password file names no way into his database.
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        _student_connect(server, "alice", "optuna_bob")


def test_a_storage_a_student_may_not_use_says_why(server, monkeypatch, tmp_path):
    from experiments.search.storage import open_storage
    from experiments.settings import UserInputError

    monkeypatch.setenv("PGPASSFILE", str(server["added"]["alice"]["passfile"]))
    bobs = server["added"]["bob"]["storage"]["optuna_bob"].replace("optuna_bob@", "optuna_alice@")
    with pytest.raises(UserInputError, match="this role may not use that database"):
        open_storage(bobs)
    wrong = tmp_path / "wrong.pgpass"
    wrong.write_text(f"*:*:*:optuna_alice:not-her-password\n")
    wrong.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(wrong))
    with pytest.raises(UserInputError, match="the password was refused or missing"):
        open_storage(server["added"]["alice"]["storage"]["optuna_alice"])


def test_add_user_refuses_a_name_that_cannot_be_a_role_and_takes_back_squatted_names(server, monkeypatch, capsys):
    from mlflow.exceptions import MlflowException

    from experiments.server.__main__ import main

    for bad in ("Carol", "carol; DROP", "admin", "x" * 31, "1carol"):
        with pytest.raises(class_server.UserInputError, match=re.escape(f"user name {bad!r} is not accepted")):
            class_server.add_user(server["folder"], bad, "carol-password-001", ADMIN_PASSWORD)
    with logged_in(monkeypatch, "bob"):  # bob takes carol's names before her account exists
        squatted = client(server["url"]).create_experiment("anncore-simple_ann/carol")
        client(server["url"]).create_registered_model("anncore-fashion-mnist-carol")
    (server["tmp"] / "carol.txt").write_text("carol-password-001\n")
    monkeypatch.setenv(class_server.ADMIN_PASSWORD_VARIABLE, ADMIN_PASSWORD)
    assert main(["add-user", "--folder", str(server["folder"]), "carol",
                 "--password-file", str(server["tmp"] / "carol.txt")]) == 0
    out = capsys.readouterr().out
    assert f"anncore-simple_ann/carol (the one made first is now anncore-simple_ann/carol.taken-{squatted})" in out
    assert "anncore-fashion-mnist-carol (the one made first is now anncore-fashion-mnist-carol.taken-" in out
    assert f"hand over: {server['folder'] / 'students' / 'carol.pgpass'}" in out
    with logged_in(monkeypatch, "admin"):
        admin = client(server["url"])
        assert admin.get_experiment(squatted).name == f"anncore-simple_ann/carol.taken-{squatted}"
        mine = admin.get_experiment_by_name("anncore-simple_ann/carol").experiment_id
        assert admin.get_registered_model("anncore-fashion-mnist-carol").name
    class_permissions.record("bob, MLflow client", "squat `anncore-simple_ann/carol` and `anncore-fashion-mnist-carol` "
                             "before carol's account exists", "harmless", "created (HTTP 200); `add-user carol` "
                             f"renamed them to `….taken-{squatted}` / `….taken-<hex>` and made carol's own")
    with logged_in(monkeypatch, "bob"):
        with pytest.raises(MlflowException, match="403|PERMISSION_DENIED") as refused:
            client(server["url"]).create_run(mine)
        class_permissions.record("bob, MLflow client", "create a run in carol's claimed experiment", "HTTP 403",
                                 "HTTP 403" if "403" in str(refused.value) else "PERMISSION_DENIED")
        with pytest.raises(MlflowException, match="403|PERMISSION_DENIED"):
            client(server["url"]).set_registered_model_alias("anncore-fashion-mnist-carol", "champion", "1")
    with logged_in(monkeypatch, "carol", "carol-password-001"):
        assert client(server["url"]).create_run(mine).info.experiment_id == mine
        client(server["url"]).set_registered_model_tag("anncore-fashion-mnist-carol", "class", "ok")


def test_an_experiment_named_for_you_but_made_by_another_is_one_line_before_any_run(server, monkeypatch, tmp_path,
                                                                                    capsys):
    from experiments.server.__main__ import main

    url = server["url"]
    requests.post(f"{url}/api/2.0/mlflow/users/create", json={"username": "dave", "password": "dave-password-001"},
                  auth=("admin", ADMIN_PASSWORD), timeout=30).raise_for_status()  # made in MLflow's UI, say
    with logged_in(monkeypatch, "bob"):
        client(url).create_experiment("anncore-simple_ann/dave")
    monkeypatch.chdir(tmp_path)
    with logged_in(monkeypatch, "dave", "dave-password-001"):
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", url])
        assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: experiment 'anncore-simple_ann/dave' on {url} belongs to another account")
        assert err.rstrip().endswith("python -m experiments.server claim --folder FOLDER dave")
        monkeypatch.setenv(class_server.ADMIN_PASSWORD_VARIABLE, ADMIN_PASSWORD)
        assert main(["claim", "--folder", str(server["folder"]), "dave"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "1 name(s) taken back; dave manages all of theirs"
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", url])
        assert status == 0, err
        [run] = runs_in(url, "anncore-simple_ann/dave")
        assert run.info.status == "FINISHED"


def test_a_second_start_and_bad_options_are_one_line_errors(server, capsys):
    from experiments.server.__main__ import main

    assert main(["start", "--folder", str(server["folder"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a server from ") and "already runs at" in err and err.count("\n") == 1
    assert main(["start", "--folder", str(server["tmp"] / "other"), "--host", "0.0.0.0",
                 "--port", str(free_port())]) == 2  # a network without an admin password
    err = capsys.readouterr().err
    assert "needs an admin password" in err and err.count("\n") == 1
    assert main(["start", "--folder", "x", "--workers", "0"]) == 2
    assert "accepted: a number of workers from 1 to 64" in capsys.readouterr().err


# --- who may write ----------------------------------------------------------------------------

@pytest.mark.parametrize("who, password, message", [
    (None, None, "needs an account; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
    ("alice", "not-her-password", "refused user 'alice' (HTTP 401: wrong username or password)"),
])
def test_without_valid_credentials_the_suite_is_refused_before_any_run(server, monkeypatch, tmp_path, who,
                                                                       password, message):
    monkeypatch.chdir(tmp_path)
    with logged_in(monkeypatch, "admin"):
        before = [e.name for e in client(server["url"]).search_experiments()]
    with logged_in(monkeypatch, who, password):
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", server["url"]])
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: tracking server {server['url']} ") and message in err
    with logged_in(monkeypatch, "admin"):
        assert [e.name for e in client(server["url"]).search_experiments()] == before  # nothing half-written
    assert list(tmp_path.iterdir()) == []


def test_students_change_only_their_own_runs_and_the_admin_any(server, monkeypatch, tiny_fashion_root, tmp_path):
    from mlflow.exceptions import MlflowException

    url = server["url"]
    monkeypatch.chdir(tmp_path)
    with logged_in(monkeypatch, "alice"):
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", url])
        assert status == 0, err
        [run] = runs_in(url, "anncore-simple_ann/alice")
    assert run.info.status == "FINISHED" and run.data.params["seed"] == "0"
    run_id, experiment_id = run.info.run_id, run.info.experiment_id
    with logged_in(monkeypatch, "bob"):
        bob = client(url)
        assert bob.get_run(run_id).info.status == "FINISHED"  # everyone may read
        attempts = {
            "delete the run": lambda: bob.delete_run(run_id),
            "tag the run": lambda: bob.set_tag(run_id, "graded", "0"),
            "log to the run": lambda: bob.log_metric(run_id, "test_acc", 1.0),
            "end the run": lambda: bob.set_terminated(run_id, "FAILED"),
            "rename the experiment": lambda: bob.rename_experiment(experiment_id, "mine-now"),
            "delete the experiment": lambda: bob.delete_experiment(experiment_id),
            "add a run to it": lambda: bob.create_run(experiment_id),
        }
        for what, attempt in attempts.items():
            with pytest.raises(MlflowException, match="403|PERMISSION_DENIED"):
                attempt()
    with logged_in(monkeypatch, "alice"):
        after = client(url).get_run(run_id)
    assert after.info.status == "FINISHED" and "graded" not in after.data.tags
    assert after.info.lifecycle_stage == "active" and after.data.metrics == run.data.metrics
    with logged_in(monkeypatch, "admin"):
        teacher = client(url)
        teacher.set_tag(run_id, "graded", "1")
        assert teacher.get_run(run_id).data.tags["graded"] == "1"
        teacher.delete_run(run_id)
        assert teacher.get_run(run_id).info.lifecycle_stage == "deleted"
        teacher.restore_run(run_id)


@pytest.fixture(scope="module")
def alices_things(server) -> dict[str, str]:
    """Alice's run, experiment, model version with @champion, and one run of bob's own, made through REST."""
    api = f"{server['url']}/api/2.0/mlflow"

    def call(who: str, path: str, body: dict) -> dict:
        response = requests.post(f"{api}/{path}", json=body, auth=(who, STUDENTS[who]), timeout=30)
        response.raise_for_status()
        return response.json()

    def experiment(who: str) -> str:
        response = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": f"anncore-simple_ann/{who}"},
                                auth=(who, STUDENTS[who]), timeout=30)
        return response.json()["experiment"]["experiment_id"]

    alices = experiment("alice")
    info = call("alice", "runs/create", {"experiment_id": alices})["run"]["info"]
    run, model = info["run_id"], "anncore-fashion-mnist-alice"
    version = call("alice", "model-versions/create", {"name": model, "source": f"{info['artifact_uri']}/model",
                                                      "run_id": run})["model_version"]["version"]
    call("alice", "registered-models/alias", {"name": model, "alias": "champion", "version": version})
    own_run = call("bob", "runs/create", {"experiment_id": experiment("bob")})["run"]["info"]["run_id"]
    return {"run": run, "experiment": alices, "model": model, "version": version, "own_run": own_run}


@pytest.mark.parametrize("what, who, method, path, body, expected", class_permissions.REST_ATTEMPTS,
                         ids=[row[0] for row in class_permissions.REST_ATTEMPTS])
def test_what_another_student_may_do_through_mlflow(server, alices_things, what, who, method, path, body, expected):
    """Each row: one REST call as bob (or nobody, or a wrong password) and the HTTP status it gets."""
    filled = class_permissions.fill(body, alices_things)
    auth = None if who is None else ("bob", "not-bobs-password") if who == "wrong" else (who, STUDENTS[who])
    where = "params" if method == "GET" else "json"  # as MLflow's own client sends them
    response = requests.request(method, f"{server['url']}{path}", auth=auth, timeout=30, **{where: filled})
    account = {None: "nobody (no credentials)", "wrong": "bob with a wrong password"}.get(who, who)
    class_permissions.record(f"{account}, MLflow REST", f"{what} (`{method} {path.split('/mlflow/')[1]}`)",
                             f"HTTP {expected}", f"HTTP {response.status_code}")
    assert response.status_code == expected, response.text[:300]
    if what.startswith("point alice's") or what.startswith("delete alice's @"):
        version = requests.get(f"{server['url']}{class_permissions.API}/registered-models/alias", timeout=30,
                               params={"name": alices_things["model"], "alias": "champion"},
                               auth=("alice", STUDENTS["alice"])).json()["model_version"]["version"]
        assert version == alices_things["version"]  # still where alice put it


# --- load ---------------------------------------------------------------------------------------

def test_the_load_test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert (load.percentile(values, 0.50), load.percentile(values, 0.95)) == (50.0, 95.0)
    assert load.percentile([7.0], 0.95) == 7.0 and math.isnan(load.percentile([], 0.5))


def test_three_clients_at_once_lose_nothing(server, monkeypatch, tiny_fashion_root):
    with logged_in(monkeypatch, "bob"):
        result = load.load_test(server["url"], "postgresql", 3, ["baseline"], tiny_fashion_root)
    assert result["clients_ok"] == 3, result["failed_clients"]
    assert result["runs_expected"] == 3  # each client's run, as the server acknowledged it
    assert result["runs_found"] == 3 and result["runs_lost"] == 0
    assert result["statuses"] == {"FINISHED": 3}
    with logged_in(monkeypatch, "bob"):
        assert len(runs_in(server["url"], "anncore-baseline/bob")) == 3
    assert result["write_p50_ms"] > 0 and result["api_calls"] > 6


# --- ghost runs ---------------------------------------------------------------------------------

def start_long_run(url: str, who: str, data: Path, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "experiments", "run", "baseline", "--epochs", "10000", "--no-progress",
               "--device", "cpu", "--data-dir", str(data), "--tracking-uri", url]
    return subprocess.Popen(command, cwd=cwd, env=account(who), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_for_epochs(url: str, experiment: str, process: subprocess.Popen, timeout: float = 240):
    """The running run of ``experiment`` once its first metrics batch (and heartbeat) reached the server."""
    c = client(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-2000:]
        runs = [r for r in runs_in(url, experiment) if r.info.status == "RUNNING"]
        if runs and c.get_metric_history(runs[0].info.run_id, "train_loss"):
            return c.get_run(runs[0].info.run_id)
        time.sleep(0.5)
    pytest.fail(f"no epoch of {experiment} reached the server in {timeout} s")


def test_a_run_killed_with_sigkill_is_ended_killed_keeping_its_metrics(server, monkeypatch, tiny_fashion_root,
                                                                      tmp_path):
    url = server["url"]
    process = start_long_run(url, "alice", tiny_fashion_root, tmp_path)
    try:
        with logged_in(monkeypatch, "alice"):
            run = wait_for_epochs(url, "anncore-baseline/alice", process)
            tags = run.data.tags
            assert tags[liveness.HOST_TAG] == liveness.this_host() and tags[liveness.PID_TAG] == str(process.pid)
            assert abs(float(tags[liveness.STARTED_TAG]) - liveness.process_start_time(process.pid)) < 1
            assert int(tags[liveness.HEARTBEAT_TAG]) > run.info.start_time  # refreshed by a metrics write
            assert not set(liveness.process_tags()) & set(run.data.params)  # tags, never params
            # Alive: neither cleanup nor another suite's start touches it.
            assert liveness.find_ghosts(client(url)) == []
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with logged_in(monkeypatch, "alice"):
        c = client(url)
        kept = len(c.get_metric_history(run.info.run_id, "train_loss"))
        assert c.get_run(run.info.run_id).info.status == "RUNNING"  # the ghost the issue measured
    # The next suite on this host ends it before its own runs start.
    monkeypatch.chdir(tmp_path)
    with logged_in(monkeypatch, "alice"):
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", url])
    assert status == 0, err
    assert f"ended ghost run {run.info.run_id} (anncore-baseline/alice) KILLED: process {process.pid}" in err
    with logged_in(monkeypatch, "alice"):
        ended = client(url).get_run(run.info.run_id)
        assert ended.info.status == "KILLED" and ended.info.end_time is not None
        assert ended.data.tags[liveness.REASON_TAG] == (
            f"process {process.pid} on {liveness.this_host()} is gone (found by cleanup)")
        assert len(client(url).get_metric_history(run.info.run_id, "train_loss")) == kept >= 1
        assert ended.data.params == run.data.params


def test_cleanup_ends_silent_runs_of_other_hosts_after_the_timeout(server, monkeypatch, tmp_path):
    url = server["url"]
    with logged_in(monkeypatch, "admin"):
        c = client(url)
        experiment_id = c.create_experiment("anncore-cleanup-check")
        now_ms = int(time.time() * 1000)

        def other_host_run(silent_s: float, parent: str | None = None) -> str:
            tags = {liveness.HOST_TAG: "lab-pc-07", liveness.PID_TAG: str(os.getpid()),
                    liveness.STARTED_TAG: "1.00", liveness.HEARTBEAT_TAG: str(int(now_ms - 1000 * silent_s))}
            if parent:
                tags["mlflow.parentRunId"] = parent
            run_id = c.create_run(experiment_id, tags=tags).info.run_id
            c.log_metric(run_id, "train_loss", 0.5, step=1)
            return run_id

        silent = other_host_run(1200)
        recent = other_host_run(10)
        parent = other_host_run(1200)  # a study's parent, whose child still beats
        other_host_run(5, parent=parent)
        status, out, err = run_cli(["cleanup", "--tracking-uri", url, "--stale-after", "600", "--dry-run"])
        assert status == 0 and f"would mark KILLED: run {silent}" in out and c.get_run(silent).info.status == "RUNNING"
        status, out, err = run_cli(["cleanup", "--tracking-uri", url, "--stale-after", "600"])
        after_ms = int(time.time() * 1000)
        assert status == 0, err
        assert out.splitlines()[-1] == "1 ghost run(s) ended"
        assert c.get_run(silent).info.status == "KILLED"
        reason = c.get_run(silent).data.tags[liveness.REASON_TAG]
        found = re.fullmatch(r"no heartbeat from lab-pc-07 for (\d+) s \(more than 600 s; found by cleanup\)", reason)
        # The silence cleanup saw: 1200 s, plus however long this machine took from now_ms to its end.
        assert found and 1200 <= int(found[1]) <= 1200 + math.ceil((after_ms - now_ms) / 1000), reason
        assert c.get_run(silent).data.metrics == {"train_loss": 0.5}
        assert c.get_run(recent).info.status == c.get_run(parent).info.status == "RUNNING"
        assert run_cli(["cleanup", "--tracking-uri", url, "--stale-after", "0.5"])[0] == 2  # out of range
        c.delete_experiment(experiment_id)


def test_cleanup_by_a_student_ends_their_ghosts_and_lists_the_others(server, monkeypatch):
    url = server["url"]
    silent = {liveness.HOST_TAG: "lab-pc-09", liveness.PID_TAG: "4242", liveness.STARTED_TAG: "1.00",
              liveness.HEARTBEAT_TAG: str(int(time.time() * 1000) - 1_200_000)}
    ghosts = {}
    for name in ("alice", "bob"):  # alice's ghost first: the one bob meets and may not end
        with logged_in(monkeypatch, name):
            c = client(url)
            experiment_id = c.get_experiment_by_name(f"anncore-baseline/{name}").experiment_id
            ghosts[name] = c.create_run(experiment_id, tags=silent).info.run_id
    with logged_in(monkeypatch, "bob"):
        status, out, err = run_cli(["cleanup", "--tracking-uri", url, "--stale-after", "600"])
        assert status == 1 and "Traceback" not in err, err
        assert err == (f"cannot end: run {ghosts['alice']} (anncore-baseline/alice): another account's run "
                       "(HTTP 403); its owner or the teacher can end it\n")
        assert f"marked KILLED: run {ghosts['bob']} (anncore-baseline/bob)" in out
        assert out.splitlines()[-1] == "1 ghost run(s) ended, 1 left to their owners"
        class_permissions.record("bob, `python -m experiments cleanup`", "end alice's and his own ghost runs",
                                 "his ended, alice's listed, exit 1",
                                 f"exit {status}; {out.splitlines()[-1]}; stderr: {err.split(':', 1)[0]}: … (HTTP 403)")
        assert client(url).get_run(ghosts["bob"]).info.status == "KILLED"
        assert client(url).get_run(ghosts["alice"]).info.status == "RUNNING"
    with logged_in(monkeypatch, "alice"):
        status, out, err = run_cli(["cleanup", "--tracking-uri", url, "--stale-after", "600"])
        assert status == 0 and out.splitlines()[-1] == "1 ghost run(s) ended", (out, err)
        assert client(url).get_run(ghosts["alice"]).info.status == "KILLED"


# --- faults ---------------------------------------------------------------------------------------

def test_while_the_database_is_down_5xx_answers_carry_no_database_detail(server, alices_things):
    """Students get a generic message; the server's log keeps PostgreSQL's text (host, port)."""
    url, port = server["url"], server["config"].db_port
    log = server["folder"] / "logs" / "mlflow.log"
    already = log.stat().st_size
    calls = [("GET", "runs/get", {"run_id": alices_things["run"]}),
             ("POST", "runs/log-metric", {"run_id": alices_things["own_run"], "key": "x", "value": 1.0,
                                          "timestamp": 0, "step": 0}),
             ("POST", "experiments/search", {"max_results": 1})]
    cluster = Cluster(server["folder"], port)
    answers = []
    cluster.stop()
    try:
        for who, password in (("bob", STUDENTS["bob"]), ("admin", ADMIN_PASSWORD)):
            for method, path, body in calls:
                where = "params" if method == "GET" else "json"
                response = requests.request(method, f"{url}/api/2.0/mlflow/{path}", auth=(who, password),
                                            timeout=60, **{where: body})
                answers.append((who, path, response.status_code, response.text))
    finally:
        cluster.start()
    failed = [answer for answer in answers if answer[2] >= 500]
    assert failed, [answer[:3] for answer in answers]
    for who, path, status, text in failed:
        assert not re.search(rf"127\.0\.0\.1|{port}|psycopg|connection|postgres|sqlalchemy", text, re.I), text
    written = log.read_bytes()[already:].decode(errors="replace")
    assert f"port {port}" in written and "anncore: HTTP 5" in written and "psycopg" in written.lower()
    class_permissions.record("bob, MLflow REST, database stopped", "read a 5xx body for details",
                             "no host, port or driver text", f"HTTP {sorted({a[2] for a in failed})}, "
                             f"`{json_code(failed[0][3])}`, \"the tracking server could not answer …\"; "
                             f"the log has `port {port}` and psycopg's text")


def json_code(text: str) -> str:
    import json

    return json.loads(text)["error_code"]


def test_the_database_restarting_mid_suite_leaves_no_run_running(server, monkeypatch, tiny_fashion_root, tmp_path):
    url, folder = server["url"], server["folder"]
    process = start_long_run(url, "bob", tiny_fashion_root, tmp_path)
    cluster = Cluster(folder, server["config"].db_port)
    try:
        with logged_in(monkeypatch, "bob"):
            run = wait_for_epochs(url, "anncore-baseline/bob", process)
        cluster.stop()  # fast: every connection of the server is cut
        time.sleep(3)   # a few seconds without a database, writes meanwhile get 5xx
        cluster.start()
        with logged_in(monkeypatch, "bob"):
            before = len(client(url).get_metric_history(run.info.run_id, "train_loss"))
            deadline = time.monotonic() + 60  # the run goes on logging after the restart
            while len(client(url).get_metric_history(run.info.run_id, "train_loss")) == before:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)  # ends the run KILLED through the suite's handler
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with logged_in(monkeypatch, "bob"):
        ended = client(url).get_run(run.info.run_id)
    assert process.returncode == 143, process.stderr.read()[-2000:]
    assert ended.info.status == "KILLED"  # survived the restart, then stopped on purpose: not RUNNING
    with logged_in(monkeypatch, "bob"):
        running = [r for e in client(url).search_experiments() for r in client(url).search_runs([e.experiment_id])
                   if r.info.status == "RUNNING" and r.data.tags.get(liveness.HOST_TAG) == liveness.this_host()]
    assert running == []


def test_two_students_run_the_whole_suite_at_once_into_their_own_names(server, tiny_fashion_root, tmp_path):
    """Both `run all --quick` with the sweep on their own Optuna database, at the same time."""
    url = server["url"]
    processes = {}
    since_ms = int(time.time() * 1000)  # earlier tests left runs (a KILLED one too) in these experiments
    for name in STUDENTS:
        (tmp_path / name).mkdir()
        env = {**account(name), "PGPASSFILE": str(server["added"][name]["passfile"]),
               "XDG_DATA_HOME": str(tmp_path / name / "data-home")}
        command = [sys.executable, "-m", "experiments", "run", "all", "--quick", "--no-progress", "--device", "cpu",
                   "--data-dir", str(tiny_fashion_root), "--tracking-uri", url,
                   "--storage", server["added"][name]["storage"][f"optuna_{name}"]]
        processes[name] = subprocess.Popen(command, cwd=tmp_path / name, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    outputs = {name: process.communicate(timeout=900) for name, process in processes.items()}
    for name, process in processes.items():
        assert process.returncode == 0, outputs[name][1][-3000:]
    from experiments.studies import EXPERIMENT_NAMES

    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name in STUDENTS:
            patch.setenv("MLFLOW_TRACKING_USERNAME", name)
            patch.setenv("MLFLOW_TRACKING_PASSWORD", STUDENTS[name])
            c = client(url)
            for experiment in EXPERIMENT_NAMES:
                runs = [r for r in runs_in(url, f"anncore-{experiment}/{name}") if r.info.start_time >= since_ms]
                assert runs and {r.info.status for r in runs} == {"FINISHED"}, (name, experiment)
            [parent] = [r for r in runs_in(url, f"anncore-sweep/{name}") if r.data.tags.get("anncore.role") == "parent"]
            model = f"anncore-fashion-mnist-{name}"
            for alias in ("baseline", "champion"):
                version = c.get_model_version_by_alias(model, alias)
                assert c.get_run(version.run_id).info.experiment_id in {
                    c.get_experiment_by_name(f"anncore-{e}/{name}").experiment_id for e in ("baseline", "sweep")}
            with _student_connect(server, name, f"optuna_{name}") as connection:
                [(trials,)] = connection.execute(
                    "SELECT count(*) FROM trials JOIN studies USING (study_id) WHERE study_name = %s",
                    (f"fashion-mnist-{name}-quick",)).fetchall()  # their own study by default
            assert trials == parent.data.metrics["n_trials"] >= 1
            assert parent.data.params["study_name"] == f"fashion-mnist-{name}-quick"
            assert not class_view.is_teacher(url)  # a student's render shows their own runs only
        # The teacher's class view: each student's row, from the runs the registry's aliases name.
        patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        patch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        assert class_view.is_teacher(url)
        c = client(url)
        rows = class_view.student_rows(c).set_index("student")
        for name in STUDENTS:
            model = f"anncore-fashion-mnist-{name}"
            baseline = c.get_run(c.get_model_version_by_alias(model, "baseline").run_id)
            champion = c.get_run(c.get_model_version_by_alias(model, "champion").run_id)
            assert rows.loc[name, "baseline_test_acc"] == baseline.data.metrics["final_test_acc"]
            assert rows.loc[name, "champion_test_acc"] == champion.data.metrics["final_test_acc"]
            assert rows.loc[name, "champion_architecture"] == champion.data.params["architecture"]
            assert rows.loc[name, "baseline_architecture"] == baseline.data.params["architecture"]
        class_permissions.record("alice and bob at once", "`run all --quick` with the sweep on a fresh server",
                                 "every run FINISHED, in their own names", "exit 0 both; every run FINISHED in "
                                 "`anncore-*/alice` and `anncore-*/bob`, their own models' aliases and studies")
        patch.setenv("MLFLOW_TRACKING_URI", url)
        section = class_view.class_section().data
        assert section.startswith("# The class\n") and all(f"| {name} | " in section for name in STUDENTS)


def stderr_lines_timed(process: subprocess.Popen):
    """A started thread reading ``process``'s stderr; its ``seen`` holds (monotonic time, line) pairs."""
    import threading

    class Reader(threading.Thread):
        seen: list[tuple[float, str]] = []

        def run(self) -> None:
            for line in process.stderr:
                self.seen.append((time.monotonic(), line))

    reader = Reader(daemon=True)
    reader.seen = []
    reader.start()
    return reader


def test_the_server_gone_mid_run_is_an_error_line_within_seconds_and_cleanup_ends_the_run_later(
        server, monkeypatch, tiny_fashion_root, tmp_path):
    url, folder = server["url"], server["folder"]
    process = start_long_run(url, "alice", tiny_fashion_root, tmp_path)
    try:
        with logged_in(monkeypatch, "alice"):
            run = wait_for_epochs(url, "anncore-baseline/alice", process)
        lines = stderr_lines_timed(process)
        stopping = time.monotonic()  # SIGTERM: uvicorn stops accepting, its workers finish and exit
        class_server._stop_mlflow(class_server.load_config(folder).mlflow_pid)
        stop_s = time.monotonic() - stopping
        process.wait(timeout=120)
        lines.join(timeout=30)
        err = "".join(line for _, line in lines.seen)
        waited = next((when for when, line in lines.seen if line.startswith("error:")), math.inf) - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The server is back before anything is asserted: the module's later tests share it.
    start_server(folder, server["tmp"] / "admin.txt", server["config"].port)
    print(f"error line {waited:.1f} s after the MLflow server was told to stop (its stop took {stop_s:.1f} s)")
    class_permissions.record("alice's suite, MLflow server stopped mid-run", "say so", "an `error:` line within 10 s",
                             f"`error:` line {waited:.1f} s after the server's SIGTERM (stop took {stop_s:.1f} s), "
                             f"exit {process.returncode}")
    assert waited < 10.0  # README's promise: the next write (at most 5 s later) fails after two quick retries
    assert process.returncode == 1 and "Traceback" not in err
    assert err.startswith("error: experiment baseline failed: "), err
    with logged_in(monkeypatch, "alice"):
        assert client(url).get_run(run.info.run_id).info.status == "RUNNING"  # nothing could reach the server
        status, out, err = run_cli(["cleanup", "--tracking-uri", url])
        assert status == 0, err
        ended = client(url).get_run(run.info.run_id)
    assert ended.info.status == "KILLED" and ended.data.tags[liveness.REASON_TAG] == (
        f"process {process.pid} on {liveness.this_host()} is gone (found by cleanup)")


def test_backup_stop_down_server_error_and_restore(server, monkeypatch, tmp_path):
    import psycopg

    url, folder = server["url"], server["folder"]
    cluster = Cluster(folder, server["config"].db_port)

    def database(name: str):
        return psycopg.connect(host="127.0.0.1", port=cluster.port, user="anncore", dbname=name,
                               password=cluster.password())

    with database("mlflow") as connection:
        kept = {row[0] for row in connection.execute("SELECT run_uuid FROM runs")}
    with database("mlflow_auth") as connection:
        kept_users = {row[0] for row in connection.execute("SELECT username FROM users")}
    written = class_server.backup(folder, tmp_path / "backup")
    accounts = [role.removeprefix("optuna_") for role in cluster.students()]
    assert {"alice", "bob"} <= set(accounts)
    assert {p.name for p in written} == {"mlflow.dump", "mlflow_auth.dump", "optuna.dump", "roles.sql",
                                         "artifacts.tar.gz", "students.tar.gz",
                                         *(f"optuna_{name}.dump" for name in accounts)}
    with logged_in(monkeypatch, "admin"):
        after_backup = client(url).create_experiment("anncore-after-backup")
    assert kept

    assert class_server.stop(folder) is True
    assert not Cluster(folder, server["config"].db_port).is_running()
    with contextlib.suppress(requests.RequestException):
        pytest.fail(f"still answering: {requests.get(url + '/health', timeout=2).status_code}")
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with logged_in(monkeypatch, "alice"):
        start = time.monotonic()
        status, out, err = run_cli(["run", "simple_ann", "--no-progress", "--tracking-uri", url])
    assert time.monotonic() - start < 10.0  # a bound on a hang, not a benchmark
    assert status == 2 and err.startswith(f"error: tracking server {url} is not reachable (")

    class_server.restore(folder, tmp_path / "backup")
    try:
        with database("mlflow") as connection:
            restored = {row[0] for row in connection.execute("SELECT run_uuid FROM runs")}
            names = {row[0] for row in connection.execute("SELECT name FROM experiments")}
        with database("mlflow_auth") as connection:
            users = {row[0] for row in connection.execute("SELECT username FROM users")}
        with _student_connect(server, "bob", "optuna_bob") as connection:  # roles and password files came back
            connection.execute("SELECT count(*) FROM studies")
    finally:
        cluster.stop()
    assert restored == kept and "anncore-after-backup" not in names and after_backup
    assert users == kept_users and {"admin", *accounts} <= users


def test_the_measured_permission_table_prints():
    """The rows the tests above measured, as Markdown (``-s`` shows it; ``$ANNCORE_PERMISSION_TABLE`` keeps it)."""
    table = class_permissions.write_table()
    assert table.count("\n") == len(class_permissions.MEASURED) + 2
