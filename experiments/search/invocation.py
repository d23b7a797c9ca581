"""One invocation of the architecture search: open (or continue) the study, run its trials, finish it.

**Selection on validation, never on test.** Trials train on a seeded 80 % of the training set
and report accuracy on the other 20 % (metrics ``val_*``); the test set is not touched. When
the search ends, the best trial's configuration (the champion) is retrained on the whole
training set, evaluated once on the test set, logged as a model and registered as
``anncore-fashion-mnist`` with alias ``champion``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.search import runs, storage
from experiments.search.plan import SIGNATURE_ATTR, SearchPlan, check_signature, parent_params, search_plan, study_signature
from experiments.search.summary import finish_search
from experiments.search.workers import WorkerContext, run_workers
from experiments.settings import Outcome, RunSettings
from experiments.tracking import datasets

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage


def open_study(plan: SearchPlan, signature: dict[str, object]) -> tuple[BaseStorage, optuna.Study]:
    """Create the study or load it (refusing one made with other options); its storage and the study."""
    import optuna

    opened = storage.open_storage(plan.storage_url, runs.mark_stale_trial_killed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=plan.study_name, storage=opened, direction="maximize", load_if_exists=True)
    check_signature(study.user_attrs.get(SIGNATURE_ATTR), signature, plan.study_name)
    study.set_user_attr(SIGNATURE_ATTR, signature)
    return opened, study


def run_search(settings: RunSettings, plan: SearchPlan, study: optuna.Study, parent_id: str, uri: str) -> tuple[int, float]:
    """Run this invocation's trials with its workers; the first new trial's number and the wall seconds."""
    import optuna

    optuna.storages.fail_stale_trials(study)  # trials of workers that died since the last invocation
    first_number = len(study.get_trials(deepcopy=False))
    with tempfile.TemporaryDirectory(prefix="anncore-sweep-") as folder:
        claims = Path(folder) / "claims"
        claims.write_text("0")
        context = WorkerContext(
            settings=settings.to_json(),
            tracking_uri=uri, storage_url=plan.storage_url, study_name=plan.study_name,
            parent_id=parent_id, epochs=plan.epochs, trials=plan.trials,
            deadline=time.time() + plan.timeout_s if plan.timeout_s else None,
            claims_path=str(claims), threads=max(1, (os.cpu_count() or 1) // plan.workers),
            # a resumed study must not replay the random start of the first invocation
            sampler_seed=(settings.seed + 104729 * first_number) % 2**32,
            trials_per_batch=plan.trials_per_batch,
        )
        started = time.perf_counter()
        run_workers(context, plan.workers)
        return first_number, time.perf_counter() - started


def run(settings: RunSettings) -> Outcome:
    """Create or continue the study, run its trials, log the summary, retrain and register the champion."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    plan = search_plan(settings, uri)
    data = datasets.load(settings)
    database = storage.sqlite_file(plan.storage_url)
    if database is not None and settings.sweep.storage is None:
        database.parent.mkdir(parents=True, exist_ok=True)  # ./mlruns/ when MLflow is a server
    opened, study = open_study(plan, study_signature(settings, data, plan.epochs))
    parent_id = runs.find_or_create_parent(settings, study, parent_params(plan, data))
    with runs.attached_parent(parent_id, settings):
        first_number, wall_s = run_search(settings, plan, study, parent_id, uri)
        return finish_search(settings, plan, opened, data, parent_id, first_number, wall_s)
