"""The search's workers: this process and ``--workers - 1`` more claim trials of one study until the budget is spent.

With ``--trials-per-batch K`` > 1 a worker claims up to K trials at a time and trains them as one
stacked group (:mod:`experiments.search.stacked_trials`); with K = 1 it runs one trial at a time
through ``study.optimize``.

The invocation's trials are shared through a counter file under an exclusive lock; worker 0
runs in the suite's process, the others as ``python -m experiments.search.workers CONTEXT_JSON
INDEX``. If worker 0 is interrupted or fails, the others are terminated (SIGTERM: their trial
run ends KILLED, their trial FAIL).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from experiments.search import runs, stacked_trials, storage
from experiments.search.space import make_pruner, make_sampler
from experiments.search.split import validation_split
from experiments.search.trial import objective
from experiments.settings import RunSettings
from experiments.tracking import datasets, store
from experiments.tracking.signals import sigterm_raises


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker process needs, passed to it as JSON."""

    settings: str  # RunSettings.to_json()
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
    trials_per_batch: int = 1

    def run_settings(self) -> RunSettings:
        """The invocation's settings."""
        return RunSettings.from_json(self.settings)


def claim_trials(context: WorkerContext, wanted: int) -> int:
    """Take up to ``wanted`` of the invocation's trials (shared by its workers through a locked counter file); how many."""
    if context.deadline is not None and time.time() >= context.deadline:
        return 0
    with open(context.claims_path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        taken = int(handle.read() or 0)
        claimed = max(0, min(wanted, context.trials - taken))
        if claimed:
            handle.seek(0)
            handle.truncate()
            handle.write(str(taken + claimed))
    return claimed


def claim_trial(context: WorkerContext) -> bool:
    """Take one of the invocation's trials."""
    return claim_trials(context, 1) == 1


def run_trials(context: WorkerContext, worker_index: int) -> None:
    """Run trials of the study until the invocation's budget is spent (one worker's loop)."""
    import optuna
    import torch

    torch.set_num_threads(context.threads)
    settings = context.run_settings()
    optuna.logging.set_verbosity(optuna.logging.INFO if settings.progress else optuna.logging.WARNING)
    opened = storage.open_storage(context.storage_url, runs.mark_stale_trial_killed)
    sampler_seed = (context.sampler_seed + 7919 * worker_index) % 2**32
    study = optuna.load_study(study_name=context.study_name, storage=opened,
                              sampler=make_sampler(sampler_seed), pruner=make_pruner())
    data = datasets.load(settings)
    split = validation_split(data.train, settings.seed)
    if context.trials_per_batch > 1:
        while size := claim_trials(context, context.trials_per_batch):
            stacked_trials.run_group(study, opened, size, context.study_name, context.parent_id, context.epochs,
                                     settings, data, split)
        return
    while claim_trial(context):
        # A failing configuration (a diverging learning rate) is a FAIL trial; the search goes on.
        study.optimize(lambda trial: objective(trial, context.study_name, context.parent_id, context.epochs,
                                               settings, data, split),
                       n_trials=1, catch=(Exception,), gc_after_trial=False)


def worker_main(argv: list[str]) -> int:
    """``python -m experiments.search.workers CONTEXT_JSON WORKER_INDEX``: one extra worker process."""
    context = WorkerContext(**json.loads(argv[0]))
    store.connect(context.tracking_uri)
    try:
        with sigterm_raises():
            run_trials(context, int(argv[1]))
    except KeyboardInterrupt:
        return 130
    return 0


def run_workers(context: WorkerContext, workers: int) -> None:
    """Worker 0 here, workers 1.. as processes; stop them all if this one is interrupted or fails."""
    payload = json.dumps(dataclasses.asdict(context))
    environment = {**os.environ, store.TRACKING_URI_VARIABLE: context.tracking_uri}
    processes = [
        subprocess.Popen([sys.executable, "-m", "experiments.search.workers", payload, str(index)], env=environment)
        for index in range(1, workers)
    ]
    try:
        run_trials(context, 0)
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


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
