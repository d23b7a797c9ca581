"""Experiment ``sweep``: an Optuna search over ``CustomANN`` architectures, every trial an MLflow run.

The space (see :data:`SEARCH_SPACE`): 1 to 4 hidden layers, each 32 to 1024 wide (powers of
two), a hidden activation from ``anncore.activations``, dropout in [0, 0.5], Adam with a
log-uniform learning rate in [1e-4, 3e-2] and a batch size of 64, 128 or 256. A seeded TPE
sampler proposes trials; a median pruner stops a trial whose validation accuracy after an
epoch (from the second on) is below the median of earlier trials at that epoch.

**Selection on validation, never on test.** Trials train on a seeded 80 % of the training set
and report accuracy on the other 20 % (metrics ``val_*``); the test set is not touched. When
the search ends, the best trial's configuration (the champion) is retrained on the whole
training set, evaluated once on the test set, logged as a model and registered as
``anncore-fashion-mnist`` with alias ``champion``.

Budget: ``--trials`` new trials (default 12, 4 with ``--quick``) by all ``--workers`` of this
invocation together, and ``--timeout`` seconds after which no new trial starts (default 150
when neither option is given). The study lives in ``--storage`` under ``--study-name``:
running again continues it, and other machines join it through a shared PostgreSQL storage.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.settings import Outcome, RunSettings, UserInputError
from experiments.tracking import datasets, optuna_storage, search_runs, store

NEEDS_FASHION_MNIST = True
EPOCHS = 5  # the baseline's, so the champion and the baseline train alike
DEFAULT_TRIALS = 12
QUICK_TRIALS = 4
DEFAULT_TIMEOUT_S = 150.0
DEFAULT_STUDY_NAME = "fashion-mnist"
VALIDATION_FRACTION = 0.2
MAX_HIDDEN_LAYERS = 4
WIDTHS = (32, 64, 128, 256, 512, 1024)
DROPOUT_RANGE = (0.0, 0.5)
LEARNING_RATE_RANGE = (1e-4, 3e-2)
BATCH_SIZES = (64, 128, 256)
TPE_STARTUP_TRIALS = 5  # random trials before TPE models the results
PRUNER_STARTUP_TRIALS = 2  # trials that run to the end before the pruner compares
PRUNER_WARMUP_EPOCHS = 2  # steps are 1-based epochs and Optuna judges step >= this: never after epoch 1 (too noisy)
SPACE_VERSION = 1  # bump when the space changes: a study cannot mix two spaces
SEARCH_SPACE = (
    {"parameter": "n_hidden_layers", "distribution": "integer", "values": f"1 to {MAX_HIDDEN_LAYERS}"},
    {"parameter": "width_k", "distribution": "categorical (one per hidden layer)", "values": ", ".join(map(str, WIDTHS))},
    {"parameter": "activation", "distribution": "categorical", "values": "the hidden activations of anncore.activations"},
    {"parameter": "dropout", "distribution": "uniform", "values": f"{DROPOUT_RANGE[0]} to {DROPOUT_RANGE[1]}"},
    {"parameter": "learning_rate", "distribution": "log-uniform", "values": f"{LEARNING_RATE_RANGE[0]:g} to {LEARNING_RATE_RANGE[1]:g}"},
    {"parameter": "batch_size", "distribution": "categorical", "values": ", ".join(map(str, BATCH_SIZES))},
    {"parameter": "optimizer", "distribution": "fixed", "values": "adam"},
)
PANEL_PARAMETERS = ["n_hidden_layers", "width_1", "activation", "dropout", "learning_rate", "batch_size"]


def hidden_activations() -> list[str]:
    """The activation names a hidden layer may use: the registry's, softmax left out."""
    from anncore.activations import ACTIVATION_NAMES

    return [name for name in ACTIVATION_NAMES if name != "softmax"]


def suggest(trial) -> dict[str, object]:
    """Draw one configuration from the search space for Optuna ``trial``."""
    n_layers = trial.suggest_int("n_hidden_layers", 1, MAX_HIDDEN_LAYERS)
    params: dict[str, object] = {"n_hidden_layers": n_layers}
    for k in range(1, n_layers + 1):
        params[f"width_{k}"] = trial.suggest_categorical(f"width_{k}", list(WIDTHS))
    params["activation"] = trial.suggest_categorical("activation", hidden_activations())
    params["dropout"] = trial.suggest_float("dropout", *DROPOUT_RANGE)
    params["learning_rate"] = trial.suggest_float("learning_rate", *LEARNING_RATE_RANGE, log=True)
    params["batch_size"] = trial.suggest_categorical("batch_size", list(BATCH_SIZES))
    return params


def layer_sizes(params: dict[str, object]) -> list[int]:
    """``[784, width_1, ..., width_n, 10]`` of a configuration."""
    widths = [int(params[f"width_{k}"]) for k in range(1, int(params["n_hidden_layers"]) + 1)]
    return [28 * 28, *widths, 10]


@dataclass(frozen=True)
class Split:
    """The training set cut in two by a seeded permutation: trials train on ``train``, are judged on ``validation``."""

    train: object
    validation: object
    train_indices: object
    validation_indices: object


def validation_split(train, seed: int, fraction: float = VALIDATION_FRACTION) -> Split:
    """Split ``train`` (a TensorData) into disjoint train and validation parts, seeded by ``seed``."""
    import torch

    from anncore.data import TensorData

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)
    n_validation = max(1, round(len(train) * fraction))
    val_idx, train_idx = order[:n_validation].sort().values, order[n_validation:].sort().values

    def part(indices):
        return TensorData(train.x[indices], train.y[indices], train.num_classes, train.class_names)

    return Split(part(train_idx), part(val_idx), train_idx, val_idx)


@dataclass(frozen=True)
class SearchPlan:
    """Where the study lives and how much this invocation adds to it."""

    study_name: str
    storage_url: str
    trials: int
    timeout_s: float | None
    epochs: int
    workers: int


def search_plan(settings: RunSettings, tracking_uri: str) -> SearchPlan:
    """The study, storage and budget of ``settings``, defaults filled in."""
    default_trials = QUICK_TRIALS if settings.quick else DEFAULT_TRIALS
    timeout = settings.timeout_s
    if timeout is None and settings.trials is None and not settings.quick:
        timeout = DEFAULT_TIMEOUT_S
    return SearchPlan(
        study_name=settings.study_name or DEFAULT_STUDY_NAME + ("-quick" if settings.quick else ""),
        storage_url=settings.storage or optuna_storage.default_storage_url(tracking_uri),
        trials=settings.trials or default_trials,
        timeout_s=timeout,
        epochs=settings.epochs_or(EPOCHS),
        workers=settings.workers,
    )


def study_signature(settings: RunSettings, data, epochs: int) -> dict[str, object]:
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


def _check_signature(existing: dict | None, wanted: dict, study_name: str) -> None:
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
    if settings.arms is not None:  # `rerun` of one trial's run
        raise UserInputError(
            f"a sweep trial ({', '.join(settings.arms)}) is not rerun on its own; accepted: the parent run's id, "
            "or python -m experiments run sweep --study-name NAME to continue its study"
        )
    plan = search_plan(settings, tracking_uri)
    database = optuna_storage.sqlite_file(plan.storage_url)
    if database is not None and not database.exists() and settings.storage is None:
        return  # the default storage, not made yet: a new study, nothing to check or make now
    storage = optuna_storage.open_storage(plan.storage_url)
    try:
        study_id = storage.get_study_id_from_name(plan.study_name)
    except KeyError:
        return
    existing = storage.get_study_user_attrs(study_id).get("anncore_signature")
    _check_signature(existing, study_signature(settings, datasets.load(settings), plan.epochs), plan.study_name)


# ---- one worker: claim a trial, run it, repeat -----------------------------------------------


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker process needs, passed to it as JSON."""

    settings: dict
    tracking_uri: str
    storage_url: str
    study_name: str
    parent_id: str
    epochs: int
    trials: int
    deadline: float | None
    claims_path: str
    threads: int
    sampler_seed: int

    def run_settings(self) -> RunSettings:
        values = dict(self.settings)
        values["data_dir"] = Path(values["data_dir"])
        for key in ("seeds", "hidden_sizes", "arms"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return RunSettings(**values)


def claim_trial(context: WorkerContext) -> bool:
    """Take one of the invocation's trials (shared by its workers through a locked counter file)."""
    if context.deadline is not None and time.time() >= context.deadline:
        return False
    with open(context.claims_path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        taken = int(handle.read() or 0)
        if taken >= context.trials:
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(taken + 1))
    return True


def make_sampler(seed: int):
    """Seeded TPE."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)


def make_pruner():
    """Median pruning on the per-epoch validation accuracy."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS)


def work(context: WorkerContext, worker_index: int) -> None:
    """Run trials of the study until the invocation's budget is spent."""
    import optuna
    import torch

    from experiments.tracking.search_trial import objective

    torch.set_num_threads(context.threads)
    settings = context.run_settings()
    optuna.logging.set_verbosity(optuna.logging.INFO if settings.progress else optuna.logging.WARNING)
    storage = optuna_storage.open_storage(context.storage_url, search_runs.mark_stale_trial_killed)
    sampler_seed = (context.sampler_seed + 7919 * worker_index) % 2**32
    study = optuna.load_study(study_name=context.study_name, storage=storage,
                              sampler=make_sampler(sampler_seed), pruner=make_pruner())
    data = datasets.load(settings)
    split = validation_split(data.train, settings.seed)
    while claim_trial(context):
        # A failing configuration (a diverging learning rate) is a FAIL trial; the search goes on.
        study.optimize(lambda trial: objective(trial, context, settings, data, split),
                       n_trials=1, catch=(Exception,), gc_after_trial=False)


def worker_main(argv: list[str]) -> int:
    """``python -m experiments.studies.sweep CONTEXT_JSON WORKER_INDEX``: one extra worker process."""
    from experiments.suite import sigterm_raises

    context = WorkerContext(**json.loads(argv[0]))
    store.connect(context.tracking_uri)
    try:
        with sigterm_raises():
            work(context, int(argv[1]))
    except KeyboardInterrupt:
        return 130
    return 0


def run_workers(context: WorkerContext, workers: int) -> None:
    """Worker 0 here, workers 1.. as processes; stop them all if this one is interrupted or fails."""
    payload = json.dumps(dataclasses.asdict(context))
    environment = {**os.environ, store.TRACKING_URI_VARIABLE: context.tracking_uri}
    processes = [
        subprocess.Popen([sys.executable, "-m", "experiments.studies.sweep", payload, str(index)], env=environment)
        for index in range(1, workers)
    ]
    try:
        work(context, 0)
        for process in processes:
            process.wait()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()  # SIGTERM: its trial run ends KILLED, its trial FAIL
        for process in processes:
            process.wait()
    failed = [p.returncode for p in processes if p.returncode not in (0, None)]
    if failed:
        print(f"warning: {len(failed)} of {workers - 1} worker process(es) exited with {failed}", file=sys.stderr)


def open_study(plan: SearchPlan, signature: dict[str, object]):
    """Create the study or load it (refusing one made with other options); its storage and the study."""
    import optuna

    storage = optuna_storage.open_storage(plan.storage_url, search_runs.mark_stale_trial_killed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=plan.study_name, storage=storage, direction="maximize", load_if_exists=True)
    _check_signature(study.user_attrs.get("anncore_signature"), signature, plan.study_name)
    study.set_user_attr("anncore_signature", signature)
    return storage, study


def run_search(settings: RunSettings, plan: SearchPlan, study, parent_id: str, uri: str) -> tuple[int, float]:
    """Run this invocation's trials with its workers; the first new trial's number and the wall seconds."""
    import optuna

    optuna.storages.fail_stale_trials(study)  # trials of workers that died since the last invocation
    first_number = len(study.get_trials(deepcopy=False))
    with tempfile.TemporaryDirectory(prefix="anncore-sweep-") as folder:
        claims = Path(folder) / "claims"
        claims.write_text("0")
        context = WorkerContext(
            settings=json.loads(json.dumps(dataclasses.asdict(settings), default=str)),
            tracking_uri=uri, storage_url=plan.storage_url, study_name=plan.study_name,
            parent_id=parent_id, epochs=plan.epochs, trials=plan.trials,
            deadline=time.time() + plan.timeout_s if plan.timeout_s else None,
            claims_path=str(claims), threads=max(1, (os.cpu_count() or 1) // plan.workers),
            # a resumed study must not replay the random start of the first invocation
            sampler_seed=(settings.seed + 104729 * first_number) % 2**32,
        )
        started = time.perf_counter()
        run_workers(context, plan.workers)
        return first_number, time.perf_counter() - started


def run(settings: RunSettings) -> Outcome:
    """Create or continue the study, run its trials, log the summary, retrain and register the champion."""
    import mlflow

    from experiments.tracking.search_summary import finish_search

    uri = mlflow.get_tracking_uri()
    plan = search_plan(settings, uri)
    data = datasets.load(settings)
    database = optuna_storage.sqlite_file(plan.storage_url)
    if database is not None and settings.storage is None:
        database.parent.mkdir(parents=True, exist_ok=True)  # ./mlruns/ when MLflow is a server
    storage, study = open_study(plan, study_signature(settings, data, plan.epochs))
    parent_id = search_runs.find_or_create_parent(settings, study, parent_params(plan, data))
    with search_runs.attached_parent(parent_id):
        first_number, wall_s = run_search(settings, plan, study, parent_id, uri)
        return finish_search(settings, plan, storage, data, parent_id, first_number, wall_s)


def parent_params(plan: SearchPlan, data) -> dict[str, object]:
    """The study's params, logged once when its parent run is created (never the storage URL)."""
    return {
        "study_name": plan.study_name,
        "storage_backend": optuna_storage.storage_scheme(plan.storage_url),
        "epochs": plan.epochs,
        "sampler": f"TPESampler(n_startup_trials={TPE_STARTUP_TRIALS})",
        "pruner": f"MedianPruner(n_startup_trials={PRUNER_STARTUP_TRIALS}, n_warmup_steps={PRUNER_WARMUP_EPOCHS})",
        "objective": "final validation accuracy (maximize)",
        "validation_fraction": VALIDATION_FRACTION,
        "optimizer": "adam",
        **data.params(),
    }


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
