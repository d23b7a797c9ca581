"""The architecture search in MLflow: one parent run per Optuna study, one child run per trial.

The parent run is linked both ways: it carries the tag ``anncore.study_name`` and the study
keeps its id in the user attribute ``mlflow_parent_run_id``, so a resumed study and workers on
other machines attach their trials to the same parent. Each trial's run is tagged
``anncore.trial_number`` and ``anncore.trial_state`` and the trial keeps the run's id in its
user attribute ``mlflow_run_id``.

How a trial's run ends:

- COMPLETE: status FINISHED;
- PRUNED: status FINISHED as well (stopping early is the search working as designed, not an
  error), with the epochs it ran and ``anncore.trial_state = PRUNED``;
- FAIL: FAILED with the error (``anncore.error``, ``error.txt``), or KILLED when interrupted
  (Ctrl-C, SIGTERM) or when its worker died and the heartbeat found it stale.

Parent and trial runs carry the liveness tags of every run (``anncore.host``, ``pid``,
``process_start``, ``heartbeat``); an invocation that continues a study takes its parent
over (its own process's tags) and records its invocation and options in the tags
``anncore.invocation`` and ``anncore.sweep_options``, which ``rerun`` of the parent reads back.
"""

from __future__ import annotations

import contextlib
import dataclasses
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Mapping

import pandas as pd

from experiments.search.storage import without_password
from experiments.settings import INVOCATION_TAG, SWEEP_OPTIONS_TAG, RunSettings
from experiments.tracking import liveness, runs, store

if TYPE_CHECKING:
    import mlflow
    import optuna

EXPERIMENT = "sweep"
PARENT_RUN_ATTR = "mlflow_parent_run_id"
RUN_ID_ATTR = "mlflow_run_id"
STUDY_TAG = "anncore.study_name"
TRIAL_NUMBER_TAG = "anncore.trial_number"
TRIAL_STATE_TAG = "anncore.trial_state"


def _parent_exists(client: mlflow.MlflowClient, run_id: object) -> bool:
    if not isinstance(run_id, str):
        return False
    try:
        run = store.with_retry(client.get_run, run_id)
    except Exception:  # noqa: BLE001 - not in this store (e.g. the study met another MLflow store)
        return False
    return run.info.lifecycle_stage == "active"


def find_or_create_parent(settings: RunSettings, study: optuna.Study, params: Mapping[str, object]) -> str:
    """The id of the study's parent run in the current store, created (with ``params``) if it has none."""
    import mlflow

    client = mlflow.MlflowClient()
    # On one machine the lock makes find-or-create atomic; across machines (PostgreSQL storage)
    # the read-back below decides.
    with store.host_lock(f"sweep-parent {mlflow.get_tracking_uri()} {study.study_name}"):
        known = study.user_attrs.get(PARENT_RUN_ATTR)
        if _parent_exists(client, known):
            return known
        return _create_parent(client, settings, study, params)


def _create_parent(client: mlflow.MlflowClient, settings: RunSettings, study: optuna.Study, params: Mapping[str, object]) -> str:
    """Create the study's parent run and record it on the study; the id that won if two were made at once."""
    import mlflow

    experiment_id = store.get_or_create_experiment(EXPERIMENT, mlflow.get_tracking_uri())
    tags = {**runs.run_tags(settings, EXPERIMENT, "parent", None, None), STUDY_TAG: study.study_name}
    run = store.with_retry(client.create_run, experiment_id, run_name=f"sweep-{study.study_name}", tags=tags)
    values = {**runs.common_params(settings), **params}
    clean = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()}
    from mlflow.entities import Param

    store.with_retry(client.log_batch, run.info.run_id, params=[Param(k, v) for k, v in clean.items()])
    # Two invocations may create a parent at the same moment: the id read back after writing
    # ours decides (the last write wins), and a parent that lost is deleted unused.
    study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
    winner = study.user_attrs.get(PARENT_RUN_ATTR, run.info.run_id)
    if winner != run.info.run_id:
        store.with_retry(client.delete_run, run.info.run_id)
    return winner


@contextmanager
def attached_parent(parent_id: str, settings: RunSettings) -> Iterator[mlflow.ActiveRun]:
    """Make the parent run active for this invocation and end it FINISHED, FAILED or KILLED.

    The parent takes this process's liveness tags (it is this invocation's run now), this
    invocation (``anncore.invocation``) and its sweep options (storage without its password).
    """
    import mlflow

    run = store.with_retry(mlflow.start_run, run_id=parent_id)
    with runs.definite_end(run):
        options = settings.sweep
        if options.storage is not None:
            options = dataclasses.replace(options, storage=without_password(options.storage))
        store.with_retry(mlflow.set_tags, {**liveness.process_tags(), INVOCATION_TAG: settings.invocation.to_json(),
                                           SWEEP_OPTIONS_TAG: options.to_json()})
        yield run


def _set_state(state: str) -> None:
    import mlflow

    with contextlib.suppress(Exception):
        store.with_retry(mlflow.set_tag, TRIAL_STATE_TAG, state)


@contextmanager
def trial_run(settings: RunSettings, study_name: str, parent_id: str, trial: optuna.Trial) -> Iterator[mlflow.ActiveRun]:
    """A child run of ``parent_id`` for Optuna ``trial``, ended according to the trial's fate.

    Works with the parent active in this process (the first worker) and without it (the other
    workers), where the parent link is the ``mlflow.parentRunId`` tag.
    """
    import mlflow
    import optuna

    experiment_id = store.get_or_create_experiment(EXPERIMENT, mlflow.get_tracking_uri())
    arm = f"trial-{trial.number}"
    tags = {
        **runs.run_tags(settings, EXPERIMENT, "child", arm, settings.seed),
        STUDY_TAG: study_name,
        TRIAL_NUMBER_TAG: str(trial.number),
        TRIAL_STATE_TAG: "RUNNING",
    }
    active = mlflow.active_run()
    if active is None or active.info.run_id != parent_id:
        tags["mlflow.parentRunId"] = parent_id
    run = store.with_retry(mlflow.start_run, experiment_id=experiment_id, run_name=arm,
                           nested=active is not None, tags=tags)
    trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
    try:
        runs.log_params(runs.common_params(settings))
        yield run
    except optuna.TrialPruned:
        _set_state("PRUNED")
        runs.end_run(run, "FINISHED")  # pruning is the search working, not an error
        raise
    except BaseException:
        _set_state("FAIL")
        with runs.definite_end(run):
            raise
    else:
        _set_state("COMPLETE")
        runs.end_run(run, "FINISHED")


def mark_stale_trial_killed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's ``failed_trial_callback``: a trial whose worker died is FAIL; end its run KILLED."""
    import mlflow

    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if not run_id:
        return
    client = mlflow.MlflowClient()
    with contextlib.suppress(Exception):
        store.with_retry(client.set_tag, run_id, TRIAL_STATE_TAG, "FAIL")
        store.with_retry(client.set_tag, run_id, "anncore.error", "worker stopped sending heartbeats (killed?)")
        store.with_retry(client.set_terminated, run_id, "KILLED")


def trials_table(study: optuna.Study, max_epochs: int) -> pd.DataFrame:
    """One row per finished trial: number, state, value, ``param_<name>``..., epochs_run, duration_s, run_id, worker.

    ``value`` is the final validation accuracy of a COMPLETE trial (empty otherwise);
    ``last_val_acc`` is the last validation accuracy a trial reported (what a pruned trial
    reached before it stopped); ``max_epochs`` is what an unpruned trial trains.
    """
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name in ("RUNNING", "WAITING"):
            continue
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else None
        intermediate = trial.intermediate_values
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "value": trial.value,
                **{f"param_{name}": value for name, value in trial.params.items()},
                "architecture": trial.user_attrs.get("architecture"),
                "parameter_count": trial.user_attrs.get("parameter_count"),
                "epochs_run": len(intermediate),  # one report per epoch, pruned or not
                "max_epochs": max_epochs,
                "last_val_acc": intermediate[max(intermediate)] if intermediate else None,
                "duration_s": duration,
                "run_id": trial.user_attrs.get(RUN_ID_ATTR),
                "worker": trial.user_attrs.get("worker"),  # host:pid of the process that ran it
            }
        )
    if not rows:
        return pd.DataFrame(columns=["number", "state", "value", "epochs_run", "max_epochs", "last_val_acc", "duration_s", "run_id"])
    table = pd.DataFrame(rows).sort_values("number", ignore_index=True)
    params = sorted((c for c in table.columns if c.startswith("param_")), key=_param_order)
    others = [c for c in table.columns if not c.startswith("param_")]
    return table[[*others[:3], *params, *others[3:]]]


def _param_order(column: str) -> tuple[int, str]:
    """Parameters in the search space's order: depth, widths, activation, dropout, learning rate, batch size."""
    order = ["param_n_hidden_layers", "param_width_", "param_activation", "param_dropout", "param_learning_rate", "param_batch_size"]
    for position, prefix in enumerate(order):
        if column.startswith(prefix):
            return position, column
    return len(order), column


def search_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Counts by state, and the epochs run against the epochs a search without pruning would have run.

    ``epochs_without_pruning`` counts ``max_epochs`` for every COMPLETE or PRUNED trial (failed
    trials are left out of both sums); ``epochs_saved = epochs_without_pruning - epochs_run``.
    """
    counts = table["state"].value_counts() if len(table) else pd.Series(dtype=int)
    finished = table[table["state"].isin(["COMPLETE", "PRUNED"])] if len(table) else table
    run = int(finished["epochs_run"].sum()) if len(finished) else 0
    full = int(finished["max_epochs"].sum()) if len(finished) else 0
    return {
        "n_trials": float(len(table)),
        "n_complete": float(counts.get("COMPLETE", 0)),
        "n_pruned": float(counts.get("PRUNED", 0)),
        "n_fail": float(counts.get("FAIL", 0)),
        "epochs_run": float(run),
        "epochs_without_pruning": float(full),
        "epochs_saved": float(full - run),
        "epochs_saved_fraction": (full - run) / full if full else float("nan"),
    }
