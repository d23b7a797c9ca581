"""An ASGI filter that keeps server-side detail out of 5xx responses.

While the class server's PostgreSQL restarts, MLflow answers 503/500 with the database
driver's error text in the body (host, port, ``psycopg``'s message), which any logged-in
student would read. :class:`QuietServerErrors` wraps MLflow's app: every response with a
status of 500 or more keeps its status, and its body becomes one generic JSON message; the
original body goes to the server's log (its stderr, ``FOLDER/logs/mlflow.log``).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Awaitable, Callable, TextIO

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]

GENERIC_MESSAGE = ("the tracking server could not answer (HTTP {status}); try again in a moment. "
                   "The cause is in the server's log, for its administrator")
ERROR_CODE = re.compile(r"[A-Z][A-Z_]{2,63}")
LOGGED_BODY_CHARS = 2000
DROPPED_HEADERS = {b"content-length", b"content-type", b"content-encoding"}


def error_code(status: int, body: bytes) -> str:
    """The MLflow error code to keep: the body's own when it is one, else one for ``status``.

    Parameters
    ----------
    status : int
        The response's HTTP status (500 or more).
    body : bytes
        The response body MLflow wrote (JSON or not).

    Returns
    -------
    str
        E.g. ``TEMPORARILY_UNAVAILABLE`` for 503, ``INTERNAL_ERROR`` otherwise.
    """
    try:
        code = json.loads(body).get("error_code", "")
    except (ValueError, AttributeError, UnicodeDecodeError):
        code = ""
    if isinstance(code, str) and ERROR_CODE.fullmatch(code):
        return code
    return "TEMPORARILY_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR"


def generic_body(status: int, body: bytes) -> bytes:
    """The JSON body a client gets instead of ``body``: MLflow's error code and a generic message."""
    return json.dumps({"error_code": error_code(status, body),
                       "message": GENERIC_MESSAGE.format(status=status)}).encode()


def generic_headers(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """``headers`` without the original body's length, type and encoding, with the generic body's."""
    kept = [(name, value) for name, value in headers if name.lower() not in DROPPED_HEADERS]
    return [*kept, (b"content-type", b"application/json"), (b"content-length", str(length).encode())]


class QuietServerErrors:
    """Wrap an ASGI ``app``: 5xx bodies are replaced by :func:`generic_body` and logged whole.

    Parameters
    ----------
    app : callable
        The ASGI application (MLflow's FastAPI app with basic-auth).
    log : TextIO, optional
        Where the original bodies go (default: stderr, which is the server's log).
    """

    def __init__(self, app: App, log: TextIO | None = None) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}

        async def filtered(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                held.update(start=message, body=[])
            elif "start" in held and message["type"] == "http.response.body":
                held["body"].append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._send_generic(send, scope, held["start"], b"".join(held["body"]))
            else:
                await send(message)

        await self.app(scope, receive, filtered)

    async def _send_generic(self, send: Send, scope: Message, start: Message, body: bytes) -> None:
        status = start["status"]
        self._log(status, scope, body)
        quiet = generic_body(status, body)
        await send({**start, "headers": generic_headers(list(start.get("headers", [])), len(quiet))})
        await send({"type": "http.response.body", "body": quiet, "more_body": False})

    def _log(self, status: int, scope: Message, body: bytes) -> None:
        text = body.decode(errors="replace")[:LOGGED_BODY_CHARS].replace("\n", " ")
        log = self.log or sys.stderr
        print(f"anncore: HTTP {status} on {scope.get('method', '?')} {scope.get('path', '?')} "
              f"(the client got a generic message): {text}", file=log, flush=True)
