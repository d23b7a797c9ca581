"""``rerun RUN_ID``: a new run of the same experiment with the settings of an old one.

The experiment comes from the old run's ``anncore.experiment`` tag; the invocation (epochs,
seeds, device, quick) is read back whole from its ``anncore.invocation`` tag; a ``custom`` run's
architecture from its params; a sweep parent's study, storage, budget and workers from its
``anncore.sweep_options`` tag (so its rerun continues that study). Rerunning a child run of a
study reruns that one arm and seed (under a new parent). The new runs are tagged
``anncore.rerun_of``. Options given on the command line (``--device``, ``--epochs``...) override
the logged ones; the dataset must have the checksum the old run logged.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from experiments import suite
from experiments.settings import (INVOCATION_TAG, SWEEP_OPTIONS_TAG, CustomOptions, Invocation, Provenance,
                                  RunSettings, SweepOptions, UserInputError)
from experiments.studies import EXPERIMENT_NAMES, get_experiment
from experiments.tracking import datasets, store

if TYPE_CHECKING:
    from mlflow.entities import Run


def _find_run(run_id: str, uri: str) -> Run:
    import mlflow

    store.connect(uri)
    try:
        return store.with_retry(mlflow.MlflowClient().get_run, run_id)
    except mlflow.exceptions.MlflowException:
        raise UserInputError(
            f"run id {run_id!r} does not exist in {uri}; accepted: the id of a run in this store "
            "(shown in the suite's summary and in the MLflow UI)"
        ) from None


def experiment_of(run: Run) -> str:
    """The experiment that made ``run`` (its ``anncore.experiment`` tag)."""
    name = run.data.tags.get("anncore.experiment")
    if name not in EXPERIMENT_NAMES:
        raise UserInputError(
            f"run {run.info.run_id!r} has no anncore.experiment tag naming an experiment "
            f"(got {name!r}); accepted: runs made by python -m experiments"
        )
    return name


def logged_settings(run: Run) -> RunSettings:
    """The settings that made ``run``, as it logged them; a child run's: its one arm and seed."""
    tags, params = run.data.tags, run.data.params
    name = experiment_of(run)
    logged = tags.get(INVOCATION_TAG)
    invocation = Invocation.from_json(logged) if logged is not None else Invocation.from_params(params)
    arms = None
    if tags.get("anncore.role") == "child":
        invocation = dataclasses.replace(invocation, seeds=(int(tags["anncore.seed"]),))
        arms = (tags["anncore.arm"],)
    return RunSettings(
        invocation=invocation,
        custom=CustomOptions.from_params(params) if name == "custom" else CustomOptions(),
        target_accuracy=float(params.get("target_accuracy", RunSettings.target_accuracy)),
        sweep=sweep_options(run) if name == "sweep" and tags.get("anncore.role") == "parent" else SweepOptions(),
        provenance=Provenance(rerun_of=run.info.run_id, arms=arms),
    )


def settings_for_rerun(run: Run, args: argparse.Namespace) -> tuple[str, RunSettings]:
    """The experiment name and settings that reproduce ``run``, with command-line overrides."""
    return experiment_of(run), RunSettings.from_args(args, base=logged_settings(run))


def sweep_options(parent: Run) -> SweepOptions:
    """The sweep options of the last invocation that ran the study of ``parent`` (its ``anncore.sweep_options`` tag).

    A parent made before the tag existed gives its study name (a param) and defaults otherwise.
    """
    logged = parent.data.tags.get(SWEEP_OPTIONS_TAG)
    if logged is not None:
        return SweepOptions.from_json(logged)
    return SweepOptions(study_name=parent.data.params.get("study_name"))


def check_same_dataset(run: Run, settings: RunSettings, name: str) -> None:
    """Raise ``UserInputError`` if the dataset at ``--data-dir`` is not the one ``run`` used."""
    logged = run.data.params.get("dataset_sha256")
    if logged is None or not get_experiment(name).NEEDS_FASHION_MNIST:
        return
    current = datasets.load(settings).sha256
    if current != logged:
        raise UserInputError(
            f"the dataset in --data-dir {settings.data_dir} has sha256 {current[:12]}..., but run "
            f"{run.info.run_id} used {logged[:12]}...; accepted: the same FashionMNIST files"
        )


def rerun(run_id: str, args: argparse.Namespace, uri: str) -> int:
    """Rerun ``run_id`` in the store at ``uri``; return the suite's exit status."""
    run = _find_run(run_id, uri)
    name, settings = settings_for_rerun(run, args)
    check_same_dataset(run, settings, name)
    return suite.run_suite([name], settings, uri)
