"""One tracking server for a class: PostgreSQL plus ``mlflow server``, started and stopped together.

Everything lives in one folder the user chooses::

    FOLDER/server.json     ports, host, workers, auth, the MLflow server's pid (written by start)
    FOLDER/pgdata/         the PostgreSQL cluster (owned by the postgres OS user when run as root)
    FOLDER/pgpass          the database password of role anncore (libpq password file, mode 0600)
    FOLDER/basic_auth.ini  MLflow's auth configuration (no password in it), when auth is on
    FOLDER/artifacts/      artifacts served by the MLflow server (--serve-artifacts)
    FOLDER/logs/           postgresql.log and mlflow.log

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

from experiments.server.addresses import bindable, local_address
from experiments.server.postgres import DATABASES, Cluster, is_loopback
from experiments.settings import UserInputError

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_VARIABLE = "MLFLOW_AUTH_ADMIN_PASSWORD"
MIN_PASSWORD_LENGTH = 12  # MLflow's basic-auth rule
STARTUP_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
AUTH_CACHE_TTL_S = 60


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
        command += ["--app-name", "basic-auth"]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    return command


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
          allowed_hosts: str | None = None) -> ServerConfig:
    """Start PostgreSQL (initialising it the first time), create the databases, start ``mlflow server``.

    Auth is on when ``host`` is not loopback (it cannot be turned off there) or when ``auth`` is True.

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
    (folder / "logs").mkdir(exist_ok=True)
    cluster = Cluster(folder, config.db_port, host)
    cluster.initialise()
    cluster.start()
    cluster.create_databases()
    save_config(folder, config)
    environment = cluster.client_environment()
    environment.pop(ADMIN_PASSWORD_VARIABLE, None)
    # MLflow's GenAI job runner (scorers, trace rollups) serves nothing here and took ~20 s to stop.
    environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    if use_auth:
        environment["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(folder, cluster))
        environment[ADMIN_PASSWORD_VARIABLE] = password  # the server's environment only, never a file or argv
        environment["MLFLOW_FLASK_SERVER_SECRET_KEY"] = _flask_secret(folder)  # one key for all workers (CSRF)
    config.mlflow_pid = _spawn_mlflow(folder, mlflow_command(folder, config, cluster, allowed_hosts), environment)
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


def _spawn_mlflow(folder: Path, command: list[str], environment: dict[str, str]) -> int:
    """Start the server in its own session (so stopping it stops its workers) with its log in logs/."""
    with open(folder / "logs" / "mlflow.log", "a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=environment, start_new_session=True, cwd=folder)
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
    return {
        "tracking_uri": config.url,
        "mlflow_running": _pid_alive(config.mlflow_pid) and _health(config.url),
        "postgresql_running": cluster.is_running(),
        "auth": config.auth,
        "optuna_storage": cluster.url(DATABASES["optuna"]),
        "pgpassfile": str(cluster.passfile),
        "workers": config.workers,
    }


def add_user(folder: Path, username: str, password: str, admin_password: str) -> None:
    """Create a student account (default permission READ: they change only what they create)."""
    import requests

    config = load_config(folder.expanduser().resolve())
    if config is None or not config.auth:
        raise UserInputError(f"{folder} holds no server with authentication; start it with --auth or --host")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserInputError(f"the password for {username!r} has {len(password)} characters; "
                             f"accepted: at least {MIN_PASSWORD_LENGTH}")
    response = requests.post(f"{config.url}/api/2.0/mlflow/users/create", json={"username": username,
                             "password": password}, auth=(ADMIN_USERNAME, admin_password), timeout=30)
    if response.status_code in (401, 403):
        raise UserInputError(f"the server refused the admin credentials (HTTP {response.status_code}); "
                             "accepted: the admin password the server was started with")
    if response.status_code != 200:
        detail = response.json().get("message", response.text) if response.text else str(response.status_code)
        if "already exists" in detail:
            raise UserInputError(f"user {username!r} already exists; accepted: a new username")
        raise UserInputError(f"creating user {username!r} failed: {detail.strip().splitlines()[0]}")


def backup(folder: Path, target: Path) -> list[Path]:
    """``pg_dump`` each database into ``target/<database>.dump`` and copy the artifacts beside them."""
    import shutil

    folder = folder.expanduser().resolve()
    config = load_config(folder)
    if config is None:
        raise UserInputError(f"{folder} holds no class server (no server.json)")
    cluster = Cluster(folder, config.db_port, config.host)
    if not cluster.is_running():
        raise UserInputError(f"the database of {folder} is not running; start the server first")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for database in DATABASES.values():
        cluster.dump(database, target / f"{database}.dump")
        written.append(target / f"{database}.dump")
    archive = shutil.make_archive(str(target / "artifacts"), "gztar", root_dir=folder / "artifacts")
    written.append(Path(archive))
    return written


def restore(folder: Path, source: Path) -> None:
    """Replace the databases (and artifacts) of a stopped MLflow server with a backup's."""
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
    cluster.create_databases()
    for database in DATABASES.values():
        cluster.restore(database, source / f"{database}.dump")
    if (source / "artifacts.tar.gz").is_file():
        shutil.rmtree(folder / "artifacts", ignore_errors=True)
        shutil.unpack_archive(source / "artifacts.tar.gz", folder / "artifacts")
