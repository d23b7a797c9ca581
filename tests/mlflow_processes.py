"""Test plumbing for the command line and a real ``mlflow server``: call ``main`` in-process,
find a free loopback port, and run a server for the length of a ``with`` block."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from experiments.__main__ import main
from experiments.server.class_server import stop_process_group


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Call ``main(argv)`` in-process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_mlflow_server(
    backend_uri: str, artifacts: Path, log: Path, env: dict[str, str] | None = None, wait_s: float = 180
) -> Iterator[str]:
    """Run ``mlflow server`` on a free loopback port over ``backend_uri``; yield its URL.

    The server gets its own process session, so that stopping it stops its workers too.
    """
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
               "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                   env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process_group(process, timeout_s=20)
