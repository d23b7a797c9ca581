"""The class server's 5xx filter (experiments.server.quiet_errors) and its app's start lock, without a server."""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import time

from experiments.server import auth_app
from experiments.server.quiet_errors import GENERIC_MESSAGE, QuietServerErrors

LEAK = (b'{"error_code": "INTERNAL_ERROR", "message": "(psycopg.OperationalError) connection failed: '
        b'connection to server at \\"127.0.0.1\\", port 54321 failed: Connection refused"}')


def app_answering(status: int, chunks: list[bytes], content_type: bytes = b"application/json"):
    """An ASGI app that answers every request with ``status`` and ``chunks`` as its body."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(sum(map(len, chunks))).encode()),
                                (b"x-request-id", b"42")]})
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})

    return app


def call(app, scope=None) -> tuple[list[dict], str]:
    """Run one request through ``QuietServerErrors(app)``; returns the messages sent and the log."""
    log, sent = io.StringIO(), []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = scope or {"type": "http", "method": "POST", "path": "/api/2.0/mlflow/runs/create"}
    asyncio.run(QuietServerErrors(app, log=log)(scope, receive, send))
    return sent, log.getvalue()


def test_a_5xx_body_becomes_a_generic_message_and_the_log_keeps_the_detail():
    sent, log = call(app_answering(503, [LEAK[:40], LEAK[40:]]))  # the body in two chunks
    start, body = sent
    headers = dict(start["headers"])
    answer = json.loads(body["body"])
    assert start["status"] == 503 and headers[b"x-request-id"] == b"42"
    assert headers[b"content-type"] == b"application/json" and int(headers[b"content-length"]) == len(body["body"])
    assert answer == {"error_code": "INTERNAL_ERROR", "message": GENERIC_MESSAGE.format(status=503)}
    for detail in (b"127.0.0.1", b"54321", b"psycopg", b"connection", b"onnection"):
        assert detail not in body["body"].lower()
    assert log.startswith("anncore: HTTP 503 on POST /api/2.0/mlflow/runs/create") and "port 54321" in log


def test_a_5xx_that_is_not_mlflows_json_gets_a_code_for_its_status():
    sent, _ = call(app_answering(503, [b"<html>Service Unavailable: pool timeout</html>"], b"text/html"))
    assert json.loads(sent[1]["body"])["error_code"] == "TEMPORARILY_UNAVAILABLE"
    sent, _ = call(app_answering(500, [b'{"error_code": "drop table; --"}']))
    assert json.loads(sent[1]["body"])["error_code"] == "INTERNAL_ERROR"


def test_other_answers_and_other_scopes_pass_unchanged():
    chunks = [b'{"error_code": "PERMISSION_DENIED", "message": "Permission denied"}']
    for status in (200, 401, 403, 404):
        sent, log = call(app_answering(status, chunks))
        assert [m.get("body") for m in sent[1:]] == chunks and sent[0]["status"] == status and log == ""
    seen = []

    async def lifespan_app(scope, receive, send):
        seen.append(scope["type"])

    call(lifespan_app, {"type": "lifespan"})
    assert seen == ["lifespan"]


def _hold_lock(path: str, held_s: float, queue) -> None:
    with auth_app.startup_lock(path):
        queue.put(("in", time.monotonic()))
        time.sleep(held_s)
        queue.put(("out", time.monotonic()))


def test_workers_build_the_app_one_at_a_time(tmp_path):
    """Two processes (as two uvicorn workers would) never hold the start lock together."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_hold_lock, args=(str(tmp_path / "start.lock"), 0.5, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    events = sorted((queue.get(timeout=5) for _ in range(4)), key=lambda event: event[1])
    assert [kind for kind, _ in events] == ["in", "out", "in", "out"]
    with auth_app.startup_lock(None):  # no lock asked for: the block just runs
        pass
