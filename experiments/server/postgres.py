"""A PostgreSQL cluster in a folder of the user's choosing: initdb, start, stop, databases, dumps.

The cluster is Debian's ``postgresql`` (binaries under ``/usr/lib/postgresql/<version>/bin``,
or ``$ANNCORE_PG_BIN``). PostgreSQL refuses to run as root, so when this process is root every
server binary runs as the ``postgres`` OS user (``runuser -u postgres --``) over a data folder
that user owns. Clients connect over TCP as the role ``anncore`` with a generated password kept
in ``<folder>/pgpass`` (libpq's password-file format, mode 0600), so no password ever appears on
a command line, in a URL or in a log: libpq reads it through ``$PGPASSFILE``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from experiments.server.addresses import local_address
from experiments.settings import UserInputError

ROLE = "anncore"
SUPERUSER = "postgres"
# The databases one class server needs: MLflow's runs, its basic-auth permissions, Optuna studies.
DATABASES = {"tracking": "mlflow", "auth": "mlflow_auth", "optuna": "optuna"}
START_TIMEOUT_S = 60


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$ANNCORE_PG_BIN``, else Debian's newest.

    Raises
    ------
    UserInputError
        When PostgreSQL is not installed.
    """
    explicit = os.environ.get("ANNCORE_PG_BIN")
    candidates = [Path(explicit)] if explicit else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise UserInputError(
        "PostgreSQL's initdb and pg_ctl were not found under /usr/lib/postgresql/*/bin (or $ANNCORE_PG_BIN); "
        "install it: apt-get install postgresql"
    )


@dataclass
class Cluster:
    """One PostgreSQL cluster: data in ``folder/pgdata``, listening on ``host:port``.

    Parameters
    ----------
    folder : Path
        The server's folder (also holds ``pgpass`` and ``logs/postgresql.log``).
    port : int
        TCP port (and the Unix socket's number, the socket lives in the data folder).
    host : str
        ``listen_addresses``: loopback by default; another address serves a lab network.
    """

    folder: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.folder / "pgdata"

    @property
    def passfile(self) -> Path:
        return self.folder / "pgpass"

    @property
    def log(self) -> Path:
        return self.folder / "logs" / "postgresql.log"

    @property
    def client_host(self) -> str:
        """The address clients on this machine use (a wildcard listen address is reached on loopback)."""
        return local_address(self.host)

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of ``database`` (no password: libpq finds it through ``$PGPASSFILE``)."""
        return f"{driver}://{ROLE}@{self.client_host}:{self.port}/{database}"

    def client_environment(self) -> dict[str, str]:
        """Environment for processes that connect as ``anncore`` (the MLflow server, Optuna, pg_dump)."""
        return {**os.environ, "PGPASSFILE": str(self.passfile)}

    # --- running the server binaries ---------------------------------------------------------

    def _as_owner(self, command: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SUPERUSER, "--", *command]
        return command

    def _run(self, command: list[str], what: str, timeout: float = 120) -> str:
        done = subprocess.run(self._as_owner(command), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise UserInputError(f"{what} failed: {message[-1] if message else done.returncode}")
        return done.stdout

    def is_initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        bin_dir = find_bin_dir()
        done = subprocess.run(self._as_owner([str(bin_dir / "pg_ctl"), "status", "-D", str(self.data)]),
                              capture_output=True, text=True, timeout=30)
        return done.returncode == 0

    def initialise(self) -> None:
        """``initdb`` a new cluster (once), with a generated password for role ``anncore``."""
        if self.is_initialised():
            return
        bin_dir = find_bin_dir()
        self.data.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _check_reachable_by_postgres(self.folder.resolve().parent)
            self.folder.chmod(self.folder.stat().st_mode | 0o011)
            shutil.chown(self.data, SUPERUSER, SUPERUSER)
            self.log.parent.chmod(0o777)  # the postgres user writes its log there
        self.data.chmod(0o700)
        # Unix-socket connections are trusted: the socket lives in the data folder (mode 0700), which
        # only the cluster's OS user (and root) can enter. TCP connections need the password.
        self._run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                   "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"], "initdb")
        self._write_passfile(secrets.token_urlsafe(24))

    def _write_passfile(self, password: str) -> None:
        self.passfile.touch(mode=0o600)
        self.passfile.chmod(0o600)
        self.passfile.write_text(f"*:*:*:{ROLE}:{password}\n")

    def password(self) -> str:
        return self.passfile.read_text().strip().rsplit(":", 1)[1]

    def start(self) -> None:
        """Start the cluster (``pg_ctl start -w``) listening on ``host:port``; a no-op when running."""
        if self.is_running():
            return
        bin_dir = find_bin_dir()
        if not is_loopback(self.host):
            self._allow_network()
        options = f"-c listen_addresses='{self.host}' -p {self.port} -k {self.data}"
        self._run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data),
                   "-l", str(self.log), "-o", options], f"starting PostgreSQL on {self.host}:{self.port} "
                  f"(see {self.log})", timeout=START_TIMEOUT_S + 30)

    def _allow_network(self) -> None:
        """Let the lab network (the server's own subnets) connect as ``anncore`` with its password."""
        hba = self.data / "pg_hba.conf"
        rule = f"host all {ROLE} samenet scram-sha-256"
        text = self._run(["cat", str(hba)], "reading pg_hba.conf")
        if rule not in text:
            done = subprocess.run(self._as_owner(["tee", "-a", str(hba)]), input=rule + "\n", capture_output=True,
                                  text=True, timeout=30)
            if done.returncode != 0:
                raise UserInputError(f"editing {hba} failed: {done.stderr.strip()}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast``: open transactions roll back, the data is left consistent."""
        if not self.is_running():
            return
        bin_dir = find_bin_dir()
        self._run([str(bin_dir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data)], "stopping PostgreSQL")

    def superuser_connection(self, database: str = "postgres"):
        """A psycopg connection as ``postgres`` over the Unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.data), port=self.port, user=SUPERUSER, dbname=database,
                               autocommit=True)

    def create_databases(self) -> None:
        """Create role ``anncore`` and the databases in :data:`DATABASES`, owned by it; idempotent."""
        from psycopg import sql

        with self.superuser_connection() as connection:
            exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
            statement = "ALTER ROLE {} LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
            connection.execute(sql.SQL(statement).format(sql.Identifier(ROLE), sql.Literal(self.password())))
            for database in DATABASES.values():
                if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                    connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(ROLE)))

    def dump(self, database: str, target: Path) -> None:
        """``pg_dump -Fc`` of ``database`` into ``target`` (as ``anncore``, over TCP)."""
        bin_dir = find_bin_dir()
        done = subprocess.run([str(bin_dir / "pg_dump"), "-Fc", "-h", self.client_host, "-p", str(self.port),
                               "-U", ROLE, "-d", database, "-f", str(target)],
                              capture_output=True, text=True, env=self.client_environment(), timeout=3600)
        if done.returncode != 0:
            raise UserInputError(f"pg_dump of {database} failed: {done.stderr.strip().splitlines()[-1]}")

    def restore(self, database: str, source: Path) -> None:
        """Recreate ``database`` empty and ``pg_restore`` ``source`` into it."""
        from psycopg import sql

        with self.superuser_connection() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(ROLE)))
        bin_dir = find_bin_dir()
        done = subprocess.run([str(bin_dir / "pg_restore"), "--no-owner", "--role", ROLE, "-h", self.client_host,
                               "-p", str(self.port), "-U", ROLE, "-d", database, str(source)],
                              capture_output=True, text=True, env=self.client_environment(), timeout=3600)
        if done.returncode != 0:
            raise UserInputError(f"pg_restore into {database} failed: {done.stderr.strip().splitlines()[-1]}")


def _check_reachable_by_postgres(folder: Path) -> None:
    """The postgres OS user must be able to enter every folder above its data folder."""
    import pwd

    postgres_uid = pwd.getpwnam(SUPERUSER).pw_uid
    for parent in [folder, *folder.parents]:
        status = parent.stat()
        mode = status.st_mode
        if status.st_uid == postgres_uid or mode & 0o001:
            continue
        raise UserInputError(
            f"folder {parent} is closed to the postgres user, which runs the database (mode {oct(mode & 0o777)}); "
            f"accepted: a server folder whose parents others may enter (chmod o+x {parent}) or another --folder"
        )
