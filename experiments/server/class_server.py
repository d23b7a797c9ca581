"""One tracking server for a class: PostgreSQL plus ``mlflow server``, started and stopped together.

Everything lives in one folder the user chooses::

    FOLDER/server.json     ports, host, workers, auth, the MLflow server's pid (written by start)
    FOLDER/pgdata/         the PostgreSQL cluster (owned by the postgres OS user when run as root)
    FOLDER/pgpass          the server's database password (role anncore; libpq password file, 0600),
                           never given to students
    FOLDER/students/       NAME.pgpass: each student's database password (0600), for the teacher to hand over
    FOLDER/basic_auth.ini  MLflow's auth configuration (no password in it), when auth is on
    FOLDER/artifacts/      artifacts served by the MLflow server (--serve-artifacts)
    FOLDER/logs/           postgresql.log and mlflow.log (0600, in a folder no other user may enter)

Started as root, PostgreSQL runs as the ``postgres`` OS user and the MLflow server as the
unprivileged ``anncore-mlflow`` user (created once, with no login shell).

Beyond loopback the server always runs MLflow's basic-auth app; its admin password comes from
a file or ``$MLFLOW_AUTH_ADMIN_PASSWORD`` and is handed to the server in its environment only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from experiments.server import auth_app, students
from experiments.server.addresses import bindable, local_address, public_address
from experiments.server.postgres import DATABASES, STUDENT_PREFIX, Cluster, is_loopback
from experiments.settings import UserInputError

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_VARIABLE = "MLFLOW_AUTH_ADMIN_PASSWORD"
MIN_PASSWORD_LENGTH = 12  # MLflow's basic-auth rule
STARTUP_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
AUTH_CACHE_TTL_S = 60
SERVICE_USER = "anncore-mlflow"  # runs the MLflow server when start is run as root


@dataclass
class ServerConfig:
    """What ``start`` chose, kept in ``FOLDER/server.json`` so ``stop``/``status`` find it again."""

    host: str
    port: int
    db_port: int
    workers: int
    auth: bool
    mlflow_pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://{local_address(self.host)}:{self.port}"


def state_file(folder: Path) -> Path:
    return folder / "server.json"


def load_config(folder: Path) -> ServerConfig | None:
    path = state_file(folder)
    if not path.is_file():
        return None
    return ServerConfig(**json.loads(path.read_text()))


def save_config(folder: Path, config: ServerConfig) -> None:
    state_file(folder).write_text(json.dumps(asdict(config), indent=2) + "\n")


def free_port(host: str = "127.0.0.1") -> int:
    family, address = bindable(host)
    with socket.socket(family) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    address = local_address(host)
    with socket.socket(bindable(address)[0]) as sock:
        sock.settimeout(1)
        return sock.connect_ex((address, port)) == 0


def read_admin_password(password_file: Path | None) -> str:
    """The admin password: the first line of ``password_file``, else ``$MLFLOW_AUTH_ADMIN_PASSWORD``.

    Raises
    ------
    UserInputError
        When neither is given, the file cannot be read, or the password is shorter than 12 characters.
    """
    if password_file is not None:
        try:
            password = password_file.read_text().splitlines()[0].strip() if password_file.stat().st_size else ""
        except OSError as error:
            raise UserInputError(f"--admin-password-file {password_file}: {error.strerror}") from None
        source = f"--admin-password-file {password_file}"
    else:
        password = os.environ.get(ADMIN_PASSWORD_VARIABLE, "")
        source = f"${ADMIN_PASSWORD_VARIABLE}"
        if not password:
            raise UserInputError(
                f"the server needs an admin password and has none; accepted: --admin-password-file FILE "
                f"or ${ADMIN_PASSWORD_VARIABLE} (at least {MIN_PASSWORD_LENGTH} characters)"
            )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserInputError(
            f"the admin password from {source} has {len(password)} characters; "
            f"accepted: at least {MIN_PASSWORD_LENGTH}"
        )
    return password


def write_auth_config(folder: Path, cluster: Cluster) -> Path:
    """``basic_auth.ini``: permissions in PostgreSQL, default READ; the password is not in it."""
    path = folder / "basic_auth.ini"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {cluster.url(DATABASES['auth'])}\n"
        f"admin_username = {ADMIN_USERNAME}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Checking a password (scrypt) on every request made each write ~0.7 s under load; a worker
        # now remembers a good password for 60 s (so a changed password may work that long on others).
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n"
    )
    return path


def mlflow_command(folder: Path, config: ServerConfig, cluster: Cluster, allowed_hosts: str | None) -> list[str]:
    """The ``mlflow server`` command line (no secrets in it)."""
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", cluster.url(DATABASES["tracking"]),
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
        "--host", config.host, "--port", str(config.port), "--workers", str(config.workers),
    ]
    if config.auth:
        command += ["--app-name", auth_app.APP_NAME]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    return command


def check_app_registered() -> None:
    """The server's app (:mod:`auth_app`) must be registered with MLflow, else one clear error.

    Raises
    ------
    UserInputError
        When this Python's installed metadata lacks the ``mlflow.app`` entry point (an install
        from before it existed).
    """
    from importlib.metadata import entry_points

    if not any(point.name == auth_app.APP_NAME for point in entry_points(group="mlflow.app")):
        raise UserInputError(f"MLflow does not know the app {auth_app.APP_NAME} in this Python; reinstall "
                             "this project: pip install -e '.[server]'")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _health(url: str) -> bool:
    import requests

    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    return False


def start(folder: Path, *, host: str = "127.0.0.1", port: int | None = None, db_port: int | None = None,
          workers: int = 4, auth: bool | None = None, admin_password_file: Path | None = None,
          allowed_hosts: str | None = None, as_root: bool = False) -> ServerConfig:
    """Start PostgreSQL (initialising it the first time), create the databases, start ``mlflow server``.

    Auth is on when ``host`` is not loopback (it cannot be turned off there) or when ``auth`` is True.
    As root the MLflow server runs as :data:`SERVICE_USER`, unless ``as_root``.

    Returns
    -------
    ServerConfig
        What was started (also written to ``FOLDER/server.json``).
    """
    folder = folder.expanduser().resolve()
    previous = load_config(folder)
    if previous is not None and _pid_alive(previous.mlflow_pid) and _health(previous.url):
        raise UserInputError(f"a server from {folder} already runs at {previous.url}; stop it first")
    if auth is False and not is_loopback(host):
        raise UserInputError(f"--host {host} serves a network, which needs authentication; drop --no-auth")
    use_auth = bool(auth) or not is_loopback(host)
    password = read_admin_password(admin_password_file) if use_auth else None
    if use_auth:
        check_app_registered()
    check_service_user_can_run(as_root)
    config = ServerConfig(
        host=host,
        port=port or (previous.port if previous else 5000),
        db_port=db_port or (previous.db_port if previous else free_port()),
        workers=workers, auth=use_auth,
    )
    if port_in_use(host, config.port):
        raise UserInputError(f"port {config.port} on {host} is already in use; accepted: a free --port")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "artifacts").mkdir(exist_ok=True)
    cluster = Cluster(folder, config.db_port, host)
    cluster.initialise()
    cluster.start()
    cluster.create_databases()
    students.create_optuna_tables(cluster.url(DATABASES["optuna"]), cluster.passfile)
    cluster.share_class_study()
    save_config(folder, config)
    environment = cluster.client_environment()
    environment.pop(ADMIN_PASSWORD_VARIABLE, None)
    # MLflow's GenAI job runner (scorers, trace rollups) serves nothing here and took ~20 s to stop.
    environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    if use_auth:
        environment["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(folder, cluster))
        environment[ADMIN_PASSWORD_VARIABLE] = password  # the server's environment only, never a file or argv
        environment["MLFLOW_FLASK_SERVER_SECRET_KEY"] = _flask_secret(folder)  # one key for all workers (CSRF)
        environment[auth_app.LOCK_VARIABLE] = str(folder / "mlflow-home" / "app-start.lock")
    config.mlflow_pid = _spawn_mlflow(folder, mlflow_command(folder, config, cluster, allowed_hosts), environment,
                                      as_root)
    save_config(folder, config)
    _wait_healthy(folder, config)
    return config


def _flask_secret(folder: Path) -> str:
    """A per-folder random key, kept in ``FOLDER/flask-secret`` (0600) so restarts keep sessions valid."""
    import secrets

    path = folder / "flask-secret"
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def service_user(as_root: bool = False) -> str | None:
    """As root: the unprivileged OS user that runs the MLflow server (created once); else None (this user)."""
    import pwd

    if os.geteuid() != 0 or as_root:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        done = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                               "/nonexistent", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise UserInputError(f"creating the OS user {SERVICE_USER} failed: {done.stderr.strip()}") from None
    return SERVICE_USER


def closed_to_others() -> Path | None:
    """The first folder above this Python or its packages that other OS users cannot enter, if any."""
    import experiments
    import mlflow

    for start_path in (Path(sys.executable).resolve(), Path(mlflow.__file__).resolve(),
                       Path(experiments.__file__).resolve()):
        for parent in reversed(start_path.parents):
            if not parent.stat().st_mode & 0o001:
                return parent
    return None


def check_service_user_can_run(as_root: bool) -> None:
    """As root, unless ``as_root``: the service user must reach this Python, else one clear error."""
    closed = closed_to_others() if os.geteuid() == 0 and not as_root else None
    if closed is not None:
        raise UserInputError(
            f"the MLflow server runs as the unprivileged user {SERVICE_USER}, which cannot enter {closed} "
            f"(mode {oct(closed.stat().st_mode & 0o777)}) to run {sys.executable}; accepted: a Python "
            "environment other users may read (e.g. under /opt), or --as-root to run it as root anyway"
        )


def _hand_over(folder: Path, user: str) -> None:
    """What the MLflow server's OS user needs: the server's password file, its auth file, its HOME, the artifacts.

    Links are changed themselves, never followed: the server's user could have planted one in
    its own folders, pointing at a file of root's.
    """
    import pwd

    entry = pwd.getpwnam(user)
    for path in (folder / "pgpass", folder / "basic_auth.ini"):
        if path.exists():
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    for top in (folder / "mlflow-home", folder / "artifacts"):
        for root, folders, files in os.walk(top):
            for name in [".", *folders, *files]:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def open_private_log(path: Path) -> TextIO:
    """``path`` opened for appending, 0600; a link there (planted by someone) is an error, never followed.

    Raises
    ------
    OSError
        ``ELOOP`` when ``path`` is a symbolic link.
    """
    log = open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600), "a")
    os.fchmod(log.fileno(), 0o600)
    return log


def _spawn_mlflow(folder: Path, command: list[str], environment: dict[str, str], as_root: bool = False) -> int:
    """Start the server in its own session (so stopping it stops its workers) with its log in logs/.

    The log is opened here, in a folder only this user may change (0700, or root:postgres 0710),
    and handed to the server as its output: the server's user cannot swap it for a link.
    """
    user = service_user(as_root)
    (folder / "mlflow-home").mkdir(mode=0o700, exist_ok=True)  # the server's HOME and start lock
    if user:
        _hand_over(folder, user)
    with open_private_log(folder / "logs" / "mlflow.log") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**environment, "HOME": str(folder / "mlflow-home")} if user else environment,
                                   start_new_session=True, cwd=folder / "mlflow-home" if user else folder, user=user, group=user,
                                   extra_groups=[] if user else None)
    return process.pid


def _wait_healthy(folder: Path, config: ServerConfig) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _health(config.url):
        if not _pid_alive(config.mlflow_pid) or _is_zombie(config.mlflow_pid):
            log = (folder / "logs" / "mlflow.log").read_text(errors="replace").strip().splitlines()
            errors = [line for line in log if "Error" in line or "Exception" in line] or log or ["?"]
            raise UserInputError(f"mlflow server exited while starting: {errors[-1].strip()} "
                                 f"(see {folder / 'logs' / 'mlflow.log'})")
        if time.monotonic() > deadline:
            raise UserInputError(f"mlflow server did not answer {config.url}/health in {STARTUP_TIMEOUT_S} s "
                                 f"(see {folder / 'logs' / 'mlflow.log'})")
        time.sleep(0.5)


def _is_zombie(pid: int | None) -> bool:
    with contextlib.suppress(OSError, ValueError):
        finished, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it if it died
        return finished == pid
    return False


def stop_process_group(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM the session ``process`` leads (started with ``start_new_session=True``), SIGKILL after ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _stop_mlflow(pid: int) -> None:
    """SIGTERM uvicorn's supervisor (a child of ``mlflow server``), which stops its workers cleanly.

    A SIGTERM to every process of the session at once makes the supervisor restart the workers
    it sees die; the whole session gets SIGKILL only if it is still there after 30 s.
    """
    import psutil

    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                child.terminate()
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _pid_alive(pid) and not _is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # leftovers of the session, if any


def stop(folder: Path) -> bool:
    """Stop the MLflow server (SIGTERM to its session, SIGKILL after 30 s), then PostgreSQL (fast).

    Returns True when something was running.
    """
    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config is None:
        raise UserInputError(f"{folder} holds no class server (no server.json); accepted: the --folder given to start")
    was_running = False
    if _pid_alive(config.mlflow_pid):
        was_running = True
        _stop_mlflow(config.mlflow_pid)
    config.mlflow_pid = None
    save_config(folder, config)
    cluster = Cluster(folder, config.db_port, config.host)
    if cluster.is_running():
        was_running = True
        cluster.stop()
    return was_running


def status(folder: Path) -> dict[str, object]:
    """Whether the database and the MLflow server run, and the URLs clients use."""
    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config is None:
        raise UserInputError(f"{folder} holds no class server (no server.json); accepted: the --folder given to start")
    cluster = Cluster(folder, config.db_port, config.host)
    running = cluster.is_running()
    accounts = [role.removeprefix(STUDENT_PREFIX) for role in cluster.students()] if running else ["?"]
    return {
        "tracking_uri": config.url,
        "mlflow_running": _pid_alive(config.mlflow_pid) and _health(config.url),
        "postgresql_running": running,
        "auth": config.auth,
        "class_study_storage": cluster.url(DATABASES["optuna"], role=f"{STUDENT_PREFIX}<user>"),
        "student_passfiles": str(folder / "students"),
        "students": ", ".join(accounts),
        "workers": config.workers,
    }


def add_user(folder: Path, username: str, password: str, admin_password: str) -> dict[str, object]:
    """Create a student's account, database role, Optuna databases and experiments (see :mod:`students`).

    Returns
    -------
    dict
        ``passfile`` (the student's libpq password file), ``storage`` (their own and the class's
        Optuna storage URLs) and ``taken_back`` (experiments named for them that someone else made first).
    """
    import requests

    folder = folder.expanduser().resolve()
    students.check_username(username)
    config = load_config(folder)
    if config is None or not config.auth:
        raise UserInputError(f"{folder} holds no server with authentication; start it with --auth or --host")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserInputError(f"the password for {username!r} has {len(password)} characters; "
                             f"accepted: at least {MIN_PASSWORD_LENGTH}")
    admin = (ADMIN_USERNAME, admin_password)
    response = requests.post(f"{config.url}/api/2.0/mlflow/users/create", json={"username": username,
                             "password": password}, auth=admin, timeout=30)
    if response.status_code in (401, 403):
        raise UserInputError(f"the server refused the admin credentials (HTTP {response.status_code}); "
                             "accepted: the admin password the server was started with")
    if response.status_code != 200:
        detail = response.json().get("message", response.text) if response.text else str(response.status_code)
        if "already exists" in detail:
            raise UserInputError(f"user {username!r} already exists; accepted: a new username")
        raise UserInputError(f"creating user {username!r} failed: {detail.strip().splitlines()[0]}")
    cluster = Cluster(folder, config.db_port, config.host)
    passfile = students.add_database_account(folder, cluster, username)
    host = public_address(config.host)
    return {"passfile": passfile, "storage": students.storage_urls(cluster, username, host),
            "taken_back": students.claim_experiments(config.url, username, admin)}


def claim(folder: Path, username: str, admin_password: str) -> list[str]:
    """Give ``username`` back the experiments named for them (see :func:`students.claim_experiments`)."""
    folder = folder.expanduser().resolve()
    students.check_username(username)
    config = load_config(folder)
    if config is None or not config.auth:
        raise UserInputError(f"{folder} holds no server with authentication; start it with --auth or --host")
    return students.claim_experiments(config.url, username, (ADMIN_USERNAME, admin_password))


def _private_folder(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def backup(folder: Path, target: Path) -> list[Path]:
    """Dump every database (the students' too) and the roles into ``target``, with the artifacts.

    ``target`` is made 0700 and every file in it 0600: the dumps hold password hashes.
    """
    import shutil

    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config is None:
        raise UserInputError(f"{folder} holds no class server (no server.json)")
    cluster = Cluster(folder, config.db_port, config.host)
    if not cluster.is_running():
        raise UserInputError(f"the database of {folder} is not running; start the server first")
    _private_folder(target)
    cluster.dump_roles(target / "roles.sql")
    written = [target / "roles.sql"]
    for database in (*DATABASES.values(), *cluster.student_databases()):
        cluster.dump(database, target / f"{database}.dump")
        written.append(target / f"{database}.dump")
    for name, source in (("artifacts", folder / "artifacts"), ("students", folder / "students")):
        if source.is_dir():
            archive = Path(shutil.make_archive(str(target / name), "gztar", root_dir=source))
            archive.chmod(0o600)
            written.append(archive)
    return written


def restore(folder: Path, source: Path) -> None:
    """Replace the databases (and artifacts, students' password files) of a stopped MLflow server with a backup's."""
    import shutil

    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config is None:
        raise UserInputError(f"{folder} holds no class server (no server.json); start it once first")
    if _pid_alive(config.mlflow_pid):
        raise UserInputError(f"the MLflow server of {folder} is running; stop it, then restore")
    missing = [name for name in DATABASES.values() if not (source / f"{name}.dump").is_file()]
    if missing:
        raise UserInputError(f"backup {source} lacks {', '.join(m + '.dump' for m in missing)}; "
                             "accepted: a folder written by the backup command")
    cluster = Cluster(folder, config.db_port, config.host)
    cluster.initialise()
    cluster.start()
    if (source / "roles.sql").is_file():
        cluster.restore_roles(source / "roles.sql")
    cluster.create_databases()  # after the roles: anncore keeps this folder's password
    for dump in sorted(source.glob("*.dump")):
        cluster.restore(dump.stem, dump)
    cluster.share_class_study()
    for name in ("artifacts", "students"):
        if (source / f"{name}.tar.gz").is_file():
            shutil.rmtree(folder / name, ignore_errors=True)
            shutil.unpack_archive(source / f"{name}.tar.gz", folder / name)
    if (folder / "students").is_dir():
        _private_folder(folder / "students")
        for passfile in (folder / "students").glob("*.pgpass"):  # a backup from a server on another port
            students.set_passfile_port(passfile, cluster.port)
