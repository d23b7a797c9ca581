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

ROLE = "anncore"  # the server's own role: owns mlflow and mlflow_auth; students never get its password
STUDENTS_GROUP = "anncore_students"  # every student's role is a member: may write the shared class study
STUDENT_PREFIX = "optuna_"  # a student's role and their own Optuna database: optuna_<user>
SUPERUSER = "postgres"
# The databases one class server needs: MLflow's runs, its basic-auth permissions, the class's
# shared Optuna studies (each student also gets a database optuna_<user> of their own).
DATABASES = {"tracking": "mlflow", "auth": "mlflow_auth", "optuna": "optuna"}
SERVER_ONLY = ("mlflow", "mlflow_auth")
START_TIMEOUT_S = 60
HBA_BEGIN, HBA_END = "# anncore: begin (written by python -m experiments.server)", "# anncore: end"


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

    def url(self, database: str, driver: str = "postgresql+psycopg", role: str = ROLE) -> str:
        """SQLAlchemy URL of ``database`` as ``role`` (no password: libpq finds it through ``$PGPASSFILE``)."""
        return f"{driver}://{role}@{self.client_host}:{self.port}/{database}"

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
        self.write_hba()
        self._prepare_log()
        options = f"-c listen_addresses='{self.host}' -p {self.port} -k {self.data}"
        self._run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data),
                   "-l", str(self.log), "-o", options], f"starting PostgreSQL on {self.host}:{self.port} "
                  f"(see {self.log})", timeout=START_TIMEOUT_S + 30)

    def hba_rules(self) -> str:
        """The ``pg_hba.conf`` block this server needs, read top-down before initdb's defaults.

        The server's role connects from this machine only, to its two databases and the shared
        study; student roles connect (from the lab network when the server serves one) only to
        the shared study and to the database named like their role (``sameuser``); anything
        else over TCP is rejected. ``CONNECT`` privileges say the same inside the cluster.
        """
        scopes = ["samenet"] if not is_loopback(self.host) else ["127.0.0.1/32", "::1/128"]
        rules = [HBA_BEGIN]
        for local in ("127.0.0.1/32", "::1/128"):
            rules.append(f"host {','.join(SERVER_ONLY)},{DATABASES['optuna']} {ROLE} {local} scram-sha-256")
        for scope in scopes:
            rules.append(f"host {DATABASES['optuna']} +{STUDENTS_GROUP} {scope} scram-sha-256")
            rules.append(f"host sameuser +{STUDENTS_GROUP} {scope} scram-sha-256")
        rules += [f"host all {ROLE},+{STUDENTS_GROUP} all reject", HBA_END]
        return "\n".join(rules) + "\n"

    def write_hba(self) -> None:
        """Put :meth:`hba_rules` first in ``pg_hba.conf`` (replacing an older block), then reload if running."""
        hba = self.data / "pg_hba.conf"
        original = text = self._run(["cat", str(hba)], "reading pg_hba.conf")
        if HBA_BEGIN in text:
            text = text[:text.index(HBA_BEGIN)] + text[text.index(HBA_END) + len(HBA_END):].lstrip("\n")
        kept = [line for line in text.splitlines() if line.split()[:3] != ["host", "all", ROLE]]  # old network rule
        wanted = self.hba_rules() + "\n".join(kept) + "\n"
        if wanted == original:
            return
        done = subprocess.run(self._as_owner(["tee", str(hba)]), input=wanted, capture_output=True, text=True,
                              timeout=30)
        if done.returncode != 0:
            raise UserInputError(f"editing {hba} failed: {done.stderr.strip()}")
        if self.is_running():
            self._run([str(find_bin_dir() / "pg_ctl"), "reload", "-D", str(self.data)], "reloading pg_hba.conf")

    def _prepare_log(self) -> None:
        """``logs/postgresql.log``, 0600, owned by the cluster's OS user, in a folder no other user enters.

        As root the folder is ``root:postgres`` 0710: the postgres user reaches its own file but
        can neither list the folder nor replace another file in it (such as MLflow's log).
        """
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch(mode=0o600)
        self.log.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(self.log.parent, "root", SUPERUSER)
            self.log.parent.chmod(0o710)
            shutil.chown(self.log, SUPERUSER, SUPERUSER)
        else:
            self.log.parent.chmod(0o700)

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
        """Create the roles and the databases in :data:`DATABASES`, owned by ``anncore``; idempotent.

        Nobody but the owner may connect to a database here (``REVOKE CONNECT ... FROM PUBLIC``),
        except the shared study, which the students' group may connect to.
        """
        from psycopg import sql

        with self.superuser_connection() as connection:
            self._set_role(connection, ROLE, self.password())
            if not self._exists(connection, "pg_roles", "rolname", STUDENTS_GROUP):
                connection.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(STUDENTS_GROUP)))
            for database in DATABASES.values():
                if not self._exists(connection, "pg_database", "datname", database):
                    connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(ROLE)))
            for database in (*DATABASES.values(), "postgres", "template1"):
                connection.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(database)))
            connection.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(DATABASES["optuna"]), sql.Identifier(STUDENTS_GROUP)))

    @staticmethod
    def _exists(connection, catalog: str, column: str, name: str) -> bool:
        from psycopg import sql

        query = sql.SQL("SELECT 1 FROM {} WHERE {} = %s").format(sql.Identifier(catalog), sql.Identifier(column))
        return connection.execute(query, (name,)).fetchone() is not None

    def _set_role(self, connection, role: str, password: str, *, member_of: str | None = None) -> None:
        """Create ``role`` (LOGIN, no other attribute) or reset its password."""
        from psycopg import sql

        verb = "ALTER" if self._exists(connection, "pg_roles", "rolname", role) else "CREATE"
        connection.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        if member_of:
            connection.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of), sql.Identifier(role)))

    def share_class_study(self) -> None:
        """Let the students' group read and write the shared study's tables (created by ``anncore``)."""
        from psycopg import sql

        with self.superuser_connection(DATABASES["optuna"]) as connection:
            group = sql.Identifier(STUDENTS_GROUP)
            connection.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}")
                               .format(group))
            connection.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(group))

    def add_student(self, role: str, password: str) -> None:
        """Role ``role`` in the students' group and a database of the same name that it owns."""
        from psycopg import sql

        with self.superuser_connection() as connection:
            self._set_role(connection, role, password, member_of=STUDENTS_GROUP)
            if not self._exists(connection, "pg_database", "datname", role):
                connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(role), sql.Identifier(role)))
            connection.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(role)))

    def students(self) -> list[str]:
        """The roles of the students' group."""
        with self.superuser_connection() as connection:
            rows = connection.execute(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = %s ORDER BY 1", (STUDENTS_GROUP,)).fetchall()
        return [row[0] for row in rows]

    def owner_of(self, database: str) -> str:
        """The role that owns ``database``: ``anncore`` for the server's, the student's role for theirs."""
        return ROLE if database in DATABASES.values() else database

    def student_databases(self) -> list[str]:
        """The students' own Optuna databases (named like their roles)."""
        with self.superuser_connection() as connection:
            names = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        return [role for role in self.students() if role in names]

    def dump(self, database: str, target: Path) -> None:
        """``pg_dump -Fc`` of ``database`` into ``target`` (mode 0600), as the superuser over the socket."""
        self._dump_to(["pg_dump", "-Fc", "-d", database], target, f"pg_dump of {database}")

    def dump_roles(self, target: Path) -> None:
        """``pg_dumpall --roles-only`` (the students' roles and password hashes) into ``target`` (0600)."""
        self._dump_to(["pg_dumpall", "--roles-only"], target, "pg_dumpall --roles-only")

    def _dump_to(self, command: list[str], target: Path, what: str) -> None:
        bin_dir = find_bin_dir()
        target.unlink(missing_ok=True)
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            done = subprocess.run(self._as_owner([str(bin_dir / command[0]), *command[1:], "-h", str(self.data),
                                                  "-p", str(self.port), "-U", SUPERUSER]),
                                  stdout=out, stderr=subprocess.PIPE, text=False, timeout=3600)
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise UserInputError(f"{what} failed: {lines[-1] if lines else done.returncode}")

    def restore_roles(self, source: Path) -> None:
        """Replay a :meth:`dump_roles` file; roles that already exist are left as they are."""
        bin_dir = find_bin_dir()
        subprocess.run(self._as_owner([str(bin_dir / "psql"), "-q", "-h", str(self.data), "-p", str(self.port),
                                       "-U", SUPERUSER, "-d", "postgres"]),
                       input=source.read_bytes(), capture_output=True, timeout=600)

    def restore(self, database: str, source: Path) -> None:
        """Recreate ``database`` empty, owned by :meth:`owner_of`, and ``pg_restore`` ``source`` into it."""
        from psycopg import sql

        owner = self.owner_of(database)
        with self.superuser_connection() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(owner)))
            connection.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(database)))
        bin_dir = find_bin_dir()
        done = subprocess.run(self._as_owner([str(bin_dir / "pg_restore"), "--no-owner", "--role", owner,
                                              "-h", str(self.data), "-p", str(self.port), "-U", SUPERUSER,
                                              "-d", database]),
                              input=source.read_bytes(), capture_output=True, timeout=3600)
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise UserInputError(f"pg_restore into {database} failed: {lines[-1] if lines else done.returncode}")


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
