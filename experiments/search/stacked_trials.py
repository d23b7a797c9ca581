"""Trials of one shape trained together (``--trials-per-batch K`` > 1), each still its own Optuna trial and MLflow run.

**What the sampler sees: every trial, each with all its parameters.** A group's first trial is
asked like any trial (``study.ask()``: TPE draws its shape and its learning rate and dropout);
the group's other trials are asked with Optuna's ``PartialFixedSampler`` over the same TPE, which
fixes the shape (``n_hidden_layers``, ``width_k``, ``activation``, ``batch_size``) to the first's
and lets TPE draw each one's learning rate and dropout. Every trial is told its own fate
(``study.tell``): COMPLETE with its final validation accuracy, PRUNED, or FAIL. So the shapes are
chosen once per group (K times fewer shape draws than trials), and TPE, which models each
parameter on its own, learns from every trial as it would one at a time. While a group trains,
its trials are RUNNING: the next group's draws know of them only once they end (as with
``--workers``).

The group trains as one ``anncore.stacked.train_stacked`` program (one batch order, the search's
seed; each member its own initial weights from that seed, as a trial trained alone gets, its own
learning rate and dropout). After every epoch each member reports its validation accuracy to its
trial and the pruner decides per member: a pruned member leaves the stack at that epoch and its
trial and run end then; a member whose loss stops being finite fails as its own trial (run
FAILED with the ``NonFiniteLossError``); the others go on. Their runs are written in bulk
(:mod:`experiments.search.member_runs`). One heartbeat thread serves the whole stack: Optuna's
trial heartbeats every ``HEARTBEAT_INTERVAL_S`` (so a killed worker's trials are found stale, as
with ``study.optimize``) and the MLflow heartbeat tag of runs not written for ``RUN_HEARTBEAT_EVERY_S``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
from typing import TYPE_CHECKING, Sequence

from experiments.search import member_runs
from experiments.search.member_runs import Member
from experiments.search.space import layer_sizes, model_config, suggest
from experiments.search.split import Split
from experiments.search.storage import HEARTBEAT_INTERVAL_S
from experiments.settings import RunSettings
from experiments.tracking import bulk_runs, liveness
from experiments.tracking.training import validation_row

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from experiments.tracking.datasets import FashionMNIST

SHAPE_PARAMETERS = ("n_hidden_layers", "activation", "batch_size")  # and every width_k
RUN_HEARTBEAT_EVERY_S = 60.0  # well inside liveness.DEFAULT_STALE_AFTER_S


def shape_params(params: dict) -> dict:
    """The parameters that fix a stack's shape: depth, widths, activation, batch size."""
    return {name: value for name, value in params.items() if name in SHAPE_PARAMETERS or name.startswith("width_")}


def _asked(trial: optuna.Trial) -> Member:
    from anncore.models import architecture_string

    params = suggest(trial)
    trial.set_user_attr("architecture", architecture_string(layer_sizes(params)))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    return Member(trial, params)


def ask_group(study: optuna.Study, size: int) -> list[Member]:
    """Ask ``size`` trials of one shape: the first drawn freely, the others with its shape fixed.

    Parameters
    ----------
    study : optuna.Study
        The study, with its own sampler (restored afterwards).
    size : int
        Trials in the group, at least 1.
    """
    import optuna

    with warnings.catch_warnings():
        # Optuna warns that the storage's heartbeat is meant for study.optimize; run_group beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        members = [_asked(study.ask())]
        sampler = study.sampler
        study.sampler = optuna.samplers.PartialFixedSampler(shape_params(members[0].params), sampler)
        try:
            members += [_asked(study.ask()) for _ in range(size - 1)]
        except BaseException:
            for member in members:
                study.tell(member.trial, state=optuna.trial.TrialState.FAIL)
            raise
        finally:
            study.sampler = sampler
    return members


def _build(members: Sequence[Member], settings: RunSettings, epochs: int) -> tuple[list, list]:
    """Each member's model (seeded as a trial trained alone: ``set_seed`` then build) and its ``TrainConfig``."""
    from anncore.trainer import set_seed

    models, configs = [], []
    for member in members:
        config = settings.train_config(epochs=epochs, batch_size=int(member.params["batch_size"]),
                                       learning_rate=float(member.params["learning_rate"]), progress=False)
        set_seed(config.seed)
        model = model_config(member.params).build()
        member.trial.set_user_attr("parameter_count", model.count_parameters())
        models.append(model)
        configs.append(config)
    return models, configs


class _Heartbeat:
    """The stack's one heartbeat: Optuna's for every live trial, MLflow's for runs not written lately."""

    def __init__(self, storage: BaseStorage, members: Sequence[Member], writer: bulk_runs.RunsWriter) -> None:
        self.storage, self.members, self.writer = storage, members, writer

    def __call__(self) -> None:
        live = [m for m in self.members if not m.done]
        for member in live:
            with contextlib.suppress(Exception):
                # Trial._trial_id: the id Optuna's own heartbeat thread records (study.optimize's).
                self.storage.record_heartbeat(member.trial._trial_id)
        now = time.monotonic()
        quiet = [m.run_id for m in live if m.run_id and now - self.writer.last_run_write.get(m.run_id, now) >= RUN_HEARTBEAT_EVERY_S]
        if quiet:
            bulk_runs.beat(quiet)
            self.writer.last_run_write.update(dict.fromkeys(quiet, time.monotonic()))


class _EpochReporter:
    """``train_stacked``'s ``on_epoch``: log each member's epoch, report it to its trial, end the pruned ones."""

    def __init__(self, study: optuna.Study, members: Sequence[Member], writer: bulk_runs.RunsWriter) -> None:
        self.study, self.members, self.writer = study, members, writer

    def __call__(self, epoch: int, rows: dict[int, dict]) -> list[int]:
        import optuna

        pruned = []
        for index, row in rows.items():
            member = self.members[index]
            member_runs.add_epoch(self.writer, member, validation_row(row))
            member.trial.report(row["test_acc"], epoch)
            if member.trial.should_prune():
                pruned.append(index)
        if pruned:
            leaving = [self.members[i] for i in pruned]
            member_runs.end_members(self.writer, leaving, "PRUNED", "FINISHED")  # pruning is the search working
            for member in leaving:
                self.study.tell(member.trial, state=optuna.trial.TrialState.PRUNED)
        if self.writer.due():
            self.writer.flush()
        return pruned


def run_group(study: optuna.Study, storage: BaseStorage, size: int, study_name: str, parent_id: str, epochs: int,
              settings: RunSettings, data: FashionMNIST, split: Split) -> None:
    """Ask ``size`` trials of one shape, train them as one stack, tell each its fate.

    As ``study.optimize(catch=(Exception,))`` does for one trial: an error of the whole stack fails
    its trials (runs FAILED) and the search goes on; an interruption ends their runs KILLED, their
    trials FAIL, and propagates.
    """
    import optuna

    from anncore.stacked import train_stacked

    optuna.storages.fail_stale_trials(study)  # as study.optimize does before each trial
    members = ask_group(study, size)
    writer = bulk_runs.RunsWriter()
    beat = _Heartbeat(storage, members, writer)
    beat()  # a first heartbeat at once: only a trial that has one can be found stale if this worker dies
    with liveness.heartbeat_thread(beat, HEARTBEAT_INTERVAL_S):
        try:
            models, configs = _build(members, settings, epochs)
            params = [member_runs.member_params(settings, member, model, config, data, split)
                      for member, model, config in zip(members, models, configs)]
            member_runs.create_member_runs(settings, study_name, parent_id, members, params, data, writer)
            result = train_stacked(models, split.train, split.validation, configs,
                                   on_epoch=_EpochReporter(study, members, writer))
        except KeyboardInterrupt as stop:
            _end_unfinished(study, writer, members, "KILLED", stop)
            raise
        except Exception as error:  # noqa: BLE001 - the search goes on, as with one trial
            _end_unfinished(study, writer, members, "FAILED", error)
            return
        for index, error in result.errors.items():  # the members whose loss stopped being finite
            _end_unfinished(study, writer, [members[index]], "FAILED", error)
        finished = [member for member in members if not member.done]
        member_runs.end_members(writer, finished, "COMPLETE", "FINISHED")
        for member in finished:
            study.tell(member.trial, float(member.rows[-1]["val_acc"]))


def _end_unfinished(study: optuna.Study, writer: bulk_runs.RunsWriter, members: Sequence[Member], status: str,
                    error: BaseException) -> None:
    """End the runs of the members still in training as ``status`` with ``error``; their trials FAIL."""
    import optuna

    unfinished = [member for member in members if not member.done]
    member_runs.end_members(writer, [m for m in unfinished if m.run_id], "FAIL", status, error)
    for member in unfinished:
        member.done = True
        with contextlib.suppress(Exception):  # e.g. the storage is gone: its heartbeat fails the trial later
            study.tell(member.trial, state=optuna.trial.TrialState.FAIL)
        optuna.logging.get_logger("optuna").warning(
            f"Trial {member.trial.number} failed with parameters: {member.params} because of the following error: "
            f"{type(error).__name__}: {error}")
