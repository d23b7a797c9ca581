"""One load-test client: ``python -m experiments.server.load_client RECORD.json ARGS...``.

Runs ``python -m experiments ARGS...`` in this process with every HTTP call to the tracking
server timed, and writes ``RECORD.json``: the exit status, each call (method, path, seconds,
HTTP status) and the ids of the runs the server said it created, which the load test then
looks for on the server (a run acknowledged but missing is lost).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import urlparse


def instrument(calls: list[list[object]], created: list[str]) -> None:
    """Time every ``requests`` call (MLflow's REST client uses a ``requests.Session``)."""
    import requests

    original = requests.sessions.Session.request

    def timed(self, method, url, *args, **kwargs):
        start = time.perf_counter()
        status = 0
        try:
            response = original(self, method, url, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            path = urlparse(str(url)).path
            calls.append([str(method).upper(), path, time.perf_counter() - start, status])
            if status == 200 and path.endswith("/runs/create"):
                try:
                    created.append(response.json()["run"]["info"]["run_id"])
                except (ValueError, KeyError, TypeError):
                    pass

    requests.sessions.Session.request = timed


def main(argv: list[str]) -> int:
    record, arguments = Path(argv[0]), argv[1:]
    calls: list[list[object]] = []
    created: list[str] = []
    instrument(calls, created)
    from experiments.__main__ import main as experiments_main

    status = 1
    try:
        status = experiments_main(arguments)
    finally:
        record.write_text(json.dumps({"status": status, "calls": calls, "created_runs": created}))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
