"""Experiment ``sweep``: an Optuna search over ``CustomANN`` architectures, every trial an MLflow run.

The search itself lives in :mod:`experiments.search` (space, validation split, workers, trial
and parent runs, summary, champion, Optuna storage); this module is its entry point in the
suite, like every other study: ``NEEDS_FASHION_MNIST``, ``preflight`` and ``run``.

Budget: ``--trials`` new trials (default 12, 4 with ``--quick``) by all ``--workers`` of this
invocation together, and ``--timeout`` seconds after which no new trial starts (default 150
when neither option is given). The study lives in ``--storage`` under ``--study-name``:
running again continues it, and other machines join it through a shared PostgreSQL storage.
The best trial (chosen on validation) is retrained, tested once and registered as
``anncore-fashion-mnist@champion``.
"""

from __future__ import annotations

from experiments.search import invocation, plan
from experiments.settings import Outcome, RunSettings

NEEDS_FASHION_MNIST = True


def preflight(settings: RunSettings, tracking_uri: str) -> None:
    """Check the storage and, for an existing study, that it can be continued; before any run starts."""
    plan.preflight(settings, tracking_uri)


def run(settings: RunSettings) -> Outcome:
    """Create or continue the study, run its trials, log the summary, retrain and register the champion."""
    return invocation.run(settings)
