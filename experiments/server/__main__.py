"""``python -m experiments.server``: start, stop and look after a class's tracking server.

Examples::

    python -m experiments.server start --folder ~/class-server                 # loopback, no accounts
    MLFLOW_AUTH_ADMIN_PASSWORD=... python -m experiments.server start --folder ~/class-server \\
        --host 0.0.0.0 --port 5000 --workers 4                                  # a lab network: accounts on
    python -m experiments.server add-user --folder ~/class-server alice --password-file alice.txt
    python -m experiments.server claim --folder ~/class-server alice     # names someone took first
    python -m experiments.server status --folder ~/class-server
    python -m experiments.server backup --folder ~/class-server ~/backups/monday
    python -m experiments.server stop --folder ~/class-server
    python -m experiments.server restore --folder ~/class-server ~/backups/monday
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from experiments.arguments import OneLineArgumentParser, command_main
from experiments.server import class_server
from experiments.server.addresses import public_address
from experiments.settings import UserInputError


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; accepted: an integer from 1024 to 65535") from None
    if not 1024 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; accepted: an integer from 1024 to 65535")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number of workers from 1 to 64")
    return value


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="python -m experiments.server",
                                   description="A PostgreSQL-backed MLflow tracking server for a class.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{start,stop,status,add-user,claim,backup,restore}")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--folder", type=Path, required=True, help="the server's folder (database, artifacts, logs)")
        return sub

    start = command("start", "start PostgreSQL and mlflow server (initialising the folder the first time)")
    start.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; another, e.g. 0.0.0.0, serves a lab network "
                            "and turns accounts on)")
    start.add_argument("--port", type=_port, help="MLflow's port (default 5000, or the folder's last one)")
    start.add_argument("--db-port", type=_port, help="PostgreSQL's port (default: a free one, kept in server.json)")
    start.add_argument("--workers", type=_workers, default=4, help="mlflow server worker processes (default 4)")
    start.add_argument("--auth", action="store_true", default=None,
                       help="accounts on loopback too (always on beyond loopback)")
    start.add_argument("--admin-password-file", type=Path,
                       help="file whose first line is the admin password (else $MLFLOW_AUTH_ADMIN_PASSWORD)")
    start.add_argument("--as-root", action="store_true",
                       help="started as root, run the MLflow server as root too (by default it runs as the "
                            "unprivileged user anncore-mlflow)")
    start.add_argument("--allowed-hosts", help="Host headers MLflow accepts, e.g. lab-server.local:5000 "
                                               "(default: localhost and private addresses)")
    command("stop", "stop mlflow server and PostgreSQL")
    command("status", "say what runs and print the URLs")
    add_user = command("add-user", "create a student's account, database role, Optuna databases and experiments")
    add_user.add_argument("username")
    add_user.add_argument("--password-file", type=Path, help="file whose first line is the password (else asked)")
    add_user.add_argument("--admin-password-file", type=Path,
                          help="the admin password's file (else $MLFLOW_AUTH_ADMIN_PASSWORD)")
    claim = command("claim", "give a student back the experiments named for them that someone else made first")
    claim.add_argument("username")
    claim.add_argument("--admin-password-file", type=Path,
                       help="the admin password's file (else $MLFLOW_AUTH_ADMIN_PASSWORD)")
    backup = command("backup", "pg_dump every database and archive the artifacts into a folder")
    backup.add_argument("target", type=Path, help="backup folder to write")
    restore = command("restore", "replace the databases and artifacts with a backup's (MLflow stopped)")
    restore.add_argument("source", type=Path, help="backup folder written by backup")
    return parser


def _password_from(path: Path | None, prompt: str) -> str:
    if path is None:
        return getpass.getpass(prompt)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise UserInputError(f"password file {path}: {error.strerror}") from None
    return lines[0].strip() if lines else ""


def run(args: argparse.Namespace) -> int:
    if args.command == "start":
        config = class_server.start(args.folder, host=args.host, port=args.port, db_port=args.db_port,
                                    workers=args.workers, auth=args.auth,
                                    admin_password_file=args.admin_password_file, allowed_hosts=args.allowed_hosts,
                                    as_root=args.as_root)
        info = class_server.status(args.folder)
        print(f"MLflow tracking server: {config.url} ({config.workers} workers"
              f"{', accounts on, default permission READ' if config.auth else ''})")
        public = f"http://{public_address(config.host)}:{config.port}"
        print(f"  students: export MLFLOW_TRACKING_URI={public}"
              + ("  MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=..." if config.auth else ""))
        print(f"Optuna: each student's own database and the shared class study; add-user prints their URLs "
              f"and password file ({info['student_passfiles']}/NAME.pgpass)")
        print(f"stop with: python -m experiments.server stop --folder {args.folder}")
    elif args.command == "stop":
        stopped = class_server.stop(args.folder)
        print("stopped" if stopped else "nothing was running")
    elif args.command == "status":
        info = class_server.status(args.folder)
        for key, value in info.items():
            print(f"{key}: {value}")
        return 0 if info["mlflow_running"] and info["postgresql_running"] else 1
    elif args.command == "add-user":
        password = _password_from(args.password_file, f"password for {args.username}: ")
        admin = class_server.read_admin_password(args.admin_password_file)
        created = class_server.add_user(args.folder, args.username, password, admin)
        print(f"created user {args.username} (default permission READ) and their experiments")
        for line in created["taken_back"]:
            print(f"  taken back from another account: {line}")
        print(f"  hand over: {created['passfile']} (their database password; they set PGPASSFILE to it)")
        own, shared = created["storage"].values()
        print(f"  their studies:      --storage {own}")
        print(f"  the class's search: --storage {shared}")
    elif args.command == "claim":
        taken = class_server.claim(args.folder, args.username, class_server.read_admin_password(
            args.admin_password_file))
        for line in taken:
            print(f"taken back for {args.username}: {line}")
        print(f"{len(taken)} name(s) taken back; {args.username} manages all of theirs")
    elif args.command == "backup":
        for path in class_server.backup(args.folder, args.target):
            print(f"wrote {path}")
    elif args.command == "restore":
        class_server.restore(args.folder, args.source)
        print(f"restored {args.source} into {args.folder}; start the server again")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input is one ``error:`` line and exit status 2."""
    return command_main(build_parser().parse_args, run, argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
