"""One invocation's search plan: which study, in which storage, with what budget; and the study's signature.

Budget: ``--trials`` new trials (default :data:`DEFAULT_TRIALS`, :data:`QUICK_TRIALS` with
``--quick``) by all ``--workers`` of this invocation together, and ``--timeout`` seconds after
which no new trial starts (default :data:`DEFAULT_TIMEOUT_S` when neither option is given).
The study lives in ``--storage`` under ``--study-name``: running again continues it, and
other machines join it through a shared PostgreSQL storage. A study is continued only with
the options and data it was made with (its signature). ``--trials-per-batch`` is not part of
the signature: a study may be continued one trial at a time or K at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiments.search import batching, storage
from experiments.search.space import PRUNER_DESCRIPTION, SAMPLER_DESCRIPTION, SPACE_VERSION
from experiments.search.split import VALIDATION_FRACTION
from experiments.settings import RunSettings, UserInputError
from experiments.tracking import datasets

if TYPE_CHECKING:
    from experiments.tracking.datasets import FashionMNIST

EPOCHS = 5  # the baseline's, so the champion and the baseline train alike
DEFAULT_TRIALS = 12
QUICK_TRIALS = 4
DEFAULT_TIMEOUT_S = 150.0
DEFAULT_STUDY_NAME = "fashion-mnist"
SIGNATURE_ATTR = "anncore_signature"


@dataclass(frozen=True)
class SearchPlan:
    """Where the study lives and how much this invocation adds to it."""

    study_name: str
    storage_url: str
    trials: int
    timeout_s: float | None
    epochs: int
    workers: int
    trials_per_batch: int = 1


def search_plan(settings: RunSettings, tracking_uri: str) -> SearchPlan:
    """The study, storage and budget of ``settings``, defaults filled in."""
    options = settings.sweep
    timeout = options.timeout_s
    if timeout is None and options.trials is None and not settings.quick:
        timeout = DEFAULT_TIMEOUT_S
    return SearchPlan(
        study_name=options.study_name or default_study_name(settings.quick, tracking_uri),
        storage_url=options.storage or storage.default_storage_url(tracking_uri),
        trials=options.trials or (QUICK_TRIALS if settings.quick else DEFAULT_TRIALS),
        timeout_s=timeout,
        epochs=settings.epochs_or(EPOCHS),
        workers=options.workers,
        trials_per_batch=batching.trials_per_batch(options.trials_per_batch, settings.device, options.workers),
    )


def default_study_name(quick: bool, tracking_uri: str) -> str:
    """``fashion-mnist`` (``-quick``); ``fashion-mnist-<user>`` on a server with accounts.

    Why: on a class server a study of one shared name made the second student's search join
    the first one's, whose parent run they may not write (HTTP 403).
    """
    import os

    from experiments.tracking.store import USERNAME_VARIABLE

    user = os.environ.get(USERNAME_VARIABLE)
    own = f"-{user}" if user and tracking_uri.startswith("http") else ""
    return DEFAULT_STUDY_NAME + own + ("-quick" if quick else "")


def study_signature(settings: RunSettings, data: FashionMNIST, epochs: int) -> dict[str, object]:
    """What every trial of one study must share; a study is continued only with the same values."""
    return {
        "space_version": SPACE_VERSION,
        "epochs": epochs,
        "quick": settings.quick,
        "max_batches": settings.max_batches,
        "seed": settings.seed,
        "validation_fraction": VALIDATION_FRACTION,
        **data.params(),
    }


def check_signature(existing: dict | None, wanted: dict, study_name: str) -> None:
    """Raise ``UserInputError`` if a study made with ``existing`` cannot be continued with ``wanted``."""
    if existing is None or existing == wanted:
        return
    differences = ", ".join(f"{key}={existing.get(key)!r} (now {wanted.get(key)!r})"
                            for key in wanted if existing.get(key) != wanted.get(key))
    raise UserInputError(
        f"study {study_name!r} was made with {differences}; accepted: the same options and data to continue it, "
        "or another --study-name"
    )


def preflight(settings: RunSettings, tracking_uri: str) -> None:
    """Check the storage and, for an existing study, that it can be continued; before any run starts."""
    if settings.provenance.arms is not None:  # `rerun` of one trial's run
        raise UserInputError(
            f"a sweep trial ({', '.join(settings.provenance.arms)}) is not rerun on its own; accepted: the parent run's id, "
            "or python -m experiments run sweep --study-name NAME to continue its study"
        )
    plan = search_plan(settings, tracking_uri)
    database = storage.sqlite_file(plan.storage_url)
    if database is not None and not database.exists() and settings.sweep.storage is None:
        return  # the default storage, not made yet: a new study, nothing to check or make now
    opened = storage.open_storage(plan.storage_url)
    try:
        study_id = opened.get_study_id_from_name(plan.study_name)
    except KeyError:
        return
    existing = opened.get_study_user_attrs(study_id).get(SIGNATURE_ATTR)
    check_signature(existing, study_signature(settings, datasets.load(settings), plan.epochs), plan.study_name)


def parent_params(plan: SearchPlan, data: FashionMNIST) -> dict[str, object]:
    """The study's params, logged once when its parent run is created (never the storage URL)."""
    return {
        "study_name": plan.study_name,
        "storage_backend": storage.storage_scheme(plan.storage_url),
        "epochs": plan.epochs,
        "sampler": SAMPLER_DESCRIPTION,
        "pruner": PRUNER_DESCRIPTION,
        "objective": "final validation accuracy (maximize)",
        "validation_fraction": VALIDATION_FRACTION,
        "optimizer": "adam",
        **data.params(),
    }
