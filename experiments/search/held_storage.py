"""Optuna's RDB storage with every write held from SIGINT and SIGTERM until it ends.

A signal that interrupts a write inside its SQLite transaction loses the write and can leave the
connection holding the database's lock; the trials' FAIL written afterwards then waits out the
busy timeout (60 s) and is lost too. MLflow's writes are held the same way (``with_retry``).
Holding the storage's writes, not the search's calls, covers Optuna's own writes in
``study.optimize`` (its ask and tell) as well as the search's report, prune, ask and tell.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import optuna

from experiments.tracking.store import signals_held

T = TypeVar("T")

# RDBStorage's public methods that write (every other public method only reads).
WRITES = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "create_new_trial",
    "set_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "record_heartbeat",
)


def _held(write: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(write)
    def held(*args: object, **kwargs: object) -> T:
        with signals_held():  # in the main thread; the heartbeat thread's writes cannot be interrupted
            return write(*args, **kwargs)

    return held


class HeldRDBStorage(optuna.storages.RDBStorage):
    """``optuna.storages.RDBStorage`` whose writes (:data:`WRITES`) run under ``signals_held``."""


for _name in WRITES:
    setattr(HeldRDBStorage, _name, _held(getattr(optuna.storages.RDBStorage, _name)))
