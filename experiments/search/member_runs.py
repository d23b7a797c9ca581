"""The MLflow runs of a stack's members: each trial of a stacked group is its own child run, written in bulk.

A member's run holds what a trial's run holds when it trains alone (:mod:`experiments.search.trial`
through ``train_logged``): the same params, the per-epoch ``train_*``/``val_*`` metrics (``step`` =
epoch), the finals, ``history.csv``, the dataset input and the tags ``anncore.trial_number`` and
``anncore.trial_state``, ended FINISHED (COMPLETE, PRUNED), FAILED (its loss stopped being finite)
or KILLED (interrupted). Added: the tags ``anncore.stack_group`` (the number of the group's first
trial) and ``anncore.stack_size``. ``epoch_time_s``, ``samples_per_sec`` and ``eval_time_s`` are the
whole stack's epoch.

How it is written (:mod:`experiments.tracking.bulk_runs`): the group's runs are created in one pass
with all their tags; their params and metrics wait for the stack's next write (after an epoch,
once 5 s have passed since the last, one ``log_batch`` call per run), and each member is written
once more, with its finals, as it ends. The liveness tags are those of every run; between writes
one thread for the whole stack keeps the heartbeats fresh (see ``stacked_trials``).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from experiments.search.runs import EXPERIMENT, RUN_ID_ATTR, STUDY_TAG, TRIAL_NUMBER_TAG, TRIAL_STATE_TAG
from experiments.search.split import Split
from experiments.settings import RunSettings
from experiments.tracking import bulk_runs, datasets, runs, store

if TYPE_CHECKING:
    import optuna

    from anncore.models import CustomANN
    from anncore.trainer import TrainConfig
    from experiments.tracking.datasets import FashionMNIST

STACK_GROUP_TAG, STACK_SIZE_TAG = "anncore.stack_group", "anncore.stack_size"
ERROR_TAG = "anncore.error"


@dataclass
class Member:
    """One trial of a stacked group: its Optuna trial, the configuration it drew, its run and its epochs."""

    trial: optuna.Trial
    params: dict
    run_id: str = ""
    rows: list[dict] = field(default_factory=list)  # its history rows, named as logged (val_*)
    done: bool = False


def member_params(settings: RunSettings, member: Member, model: CustomANN, config: TrainConfig,
                  data: FashionMNIST, split: Split) -> dict[str, object]:
    """The params of a member's run: those a trial trained alone logs (``trial_run`` and ``train_logged``)."""
    return {
        **runs.common_params(settings),
        **config.hyperparameters(),
        "max_batches": config.max_batches if config.max_batches is not None else "all",
        **model.config.hyperparameters(),
        "parameter_count": model.count_parameters(),
        **data.params(),
        "n_hidden_layers": member.params["n_hidden_layers"], "trial_number": member.trial.number,
        "evaluated_on": "validation", "search_train_size": len(split.train), "validation_size": len(split.validation),
    }


def _member_tags(settings: RunSettings, study_name: str, parent_id: str, member: Member, group: int, size: int) -> dict[str, str]:
    return {
        **runs.run_tags(settings, EXPERIMENT, "child", f"trial-{member.trial.number}", settings.seed),
        STUDY_TAG: study_name,
        TRIAL_NUMBER_TAG: str(member.trial.number),
        TRIAL_STATE_TAG: "RUNNING",
        "mlflow.parentRunId": parent_id,
        STACK_GROUP_TAG: str(group),
        STACK_SIZE_TAG: str(size),
    }


def create_member_runs(settings: RunSettings, study_name: str, parent_id: str, members: Sequence[Member],
                       params: Sequence[dict[str, object]], data: FashionMNIST, writer: bulk_runs.RunsWriter) -> None:
    """Create the members' runs in one pass (all tags at creation), log the dataset, keep their params for the first write."""
    import mlflow

    experiment_id = store.get_or_create_experiment(EXPERIMENT, mlflow.get_tracking_uri())
    group, size = members[0].trial.number, len(members)
    specs = [(f"trial-{m.trial.number}", _member_tags(settings, study_name, parent_id, m, group, size)) for m in members]
    entity = datasets.dataset_input(data)
    for member, run_id, logged in zip(members, bulk_runs.create_runs(experiment_id, specs), params):
        member.run_id = run_id
        member.trial.set_user_attr(RUN_ID_ATTR, run_id)
        datasets.log_input_to(run_id, entity)
        writer.add(run_id, params=logged)


def add_epoch(writer: bulk_runs.RunsWriter, member: Member, row: dict) -> None:
    """Keep one epoch's row (named as logged) for the member's run and its ``history.csv``."""
    member.rows.append(row)
    writer.add(member.run_id, metrics=runs.row_metrics(row), step=int(row["epoch"]))


def _finals(rows: list[dict]) -> dict[str, float]:
    """What ``train_logged`` logs at the end of a trial's run: the last epoch's values, the time, the epochs run."""
    last = rows[-1]
    return {"final_train_loss": last["train_loss"], "final_train_acc": last["train_acc"],
            "final_val_loss": last["val_loss"], "final_val_acc": last["val_acc"],
            "train_time_s": sum(row["epoch_time_s"] for row in rows), "epochs_run": len(rows)}


def end_members(writer: bulk_runs.RunsWriter, members: Sequence[Member], state: str, status: str,
                error: BaseException | None = None) -> None:
    """Write the members' last values and state, then end their runs as ``status`` (in bulk).

    A member that trained to the end or was pruned (``error`` None) gets its finals and
    ``history.csv``, as a trial trained alone; a failed or interrupted one keeps the epochs it
    finished, with ``anncore.error`` and ``error.txt``. Never raises: the runs are ended as far as
    the store allows (the caller still tells Optuna).
    """
    for member in members:
        finished = error is None and member.rows
        reason = f"{type(error).__name__}: {error}".rstrip(": ")[:runs.MAX_TAG_LENGTH] if error else None
        tags = {TRIAL_STATE_TAG: state, **({ERROR_TAG: reason} if reason else {})}
        writer.add(member.run_id, metrics=_finals(member.rows) if finished else None, tags=tags)
    ids = [member.run_id for member in members]
    _quietly(lambda: writer.flush(ids))
    for member in members:
        if error is None and member.rows:
            _quietly(lambda: bulk_runs.log_csv_to(member.run_id, pd.DataFrame(member.rows), "history.csv"))
        elif error is not None and status == "FAILED":  # interrupted (KILLED): the reason tag only
            details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            _quietly(lambda: bulk_runs.log_text_to(member.run_id, details, "error.txt"))
        member.done = True
    bulk_runs.end_runs({run_id: status for run_id in ids})
    for run_id in ids:
        writer.forget(run_id)


def _quietly(write) -> None:
    try:
        write()
    except Exception:  # noqa: BLE001 - ending the runs matters more than one failed write
        pass
