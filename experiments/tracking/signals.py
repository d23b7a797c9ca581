"""SIGTERM and Ctrl-C as exceptions, so a run that is stopped ends KILLED rather than left RUNNING.

Used by the suite (``python -m experiments``) and by the architecture search's worker processes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from experiments.tracking import store


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler, so a terminated run ends KILLED like an interrupted one."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` and Ctrl-C ``KeyboardInterrupt`` in the main thread.

    A second SIGINT or SIGTERM, while the first one's runs are being ended KILLED, ends the
    process at once (``store.second_signal_exits``). Ctrl-C is left alone where it is not
    Python's default (ignored in a background job, say).
    """

    def handler(signum: int, frame: object) -> None:
        store.Interrupts.stopping = True  # the runs are being ended: no more holding or waiting
        raise Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # leave signals alone
        yield
        return
    handled = [signal.SIGTERM] + [signal.SIGINT] * (signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    with contextlib.ExitStack() as restore:
        restore.enter_context(store.second_signal_exits())
        for signum in handled:
            restore.callback(signal.signal, signum, signal.signal(signum, handler))
        yield
