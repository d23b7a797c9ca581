"""``rerun RUN_ID``: a new run of the same experiment from the logged parameters of an old one.

The experiment comes from the old run's ``anncore.experiment`` tag; epochs, seeds, device,
quick and the ``custom`` architecture from its params; a sweep parent's study, storage, budget
and workers from its ``anncore.sweep_options`` tag (so its rerun continues that study). Rerunning a child run of a study reruns
that one arm and seed (under a new parent). The new runs are tagged ``anncore.rerun_of``.
Options given on the command line (``--device``, ``--epochs``...) override the logged ones;
the dataset must have the checksum the old run logged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import suite
from experiments.tracking import datasets, store
from experiments.settings import SWEEP_OPTIONS_TAG, CustomOptions, RunSettings, SweepOptions, UserInputError
from experiments.studies import EXPERIMENT_NAMES, get_experiment


def _find_run(run_id: str, uri: str):
    import mlflow

    store.connect(uri)
    try:
        return store.with_retry(mlflow.MlflowClient().get_run, run_id)
    except mlflow.exceptions.MlflowException:
        raise UserInputError(
            f"run id {run_id!r} does not exist in {uri}; accepted: the id of a run in this store "
            "(shown in the suite's summary and in the MLflow UI)"
        ) from None


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def settings_for_rerun(run, args: argparse.Namespace) -> tuple[str, RunSettings]:
    """The experiment name and settings that reproduce ``run``, with command-line overrides."""
    tags, params = run.data.tags, run.data.params
    name = tags.get("anncore.experiment")
    if name not in EXPERIMENT_NAMES:
        raise UserInputError(
            f"run {run.info.run_id!r} has no anncore.experiment tag naming an experiment "
            f"(got {name!r}); accepted: runs made by python -m experiments"
        )
    role = tags.get("anncore.role", "single")
    if role == "child":
        seeds, arms = (int(tags["anncore.seed"]),), (tags["anncore.arm"],)
    elif role == "parent":
        seeds, arms = _ints(params["seeds"]), None
    else:
        seeds, arms = (int(params.get("seed", 0)),), None
    defaults = RunSettings()
    settings = RunSettings(
        epochs=args.epochs or (int(params["epochs"]) if "epochs" in params else None),
        seeds=args.seeds or seeds,
        device=args.device or params.get("device", defaults.device),
        data_dir=args.data_dir or Path("data"),
        download=args.data_dir is None,
        quick=args.quick if args.quick is not None else params.get("quick") == "true",
        progress=args.progress,
        custom=CustomOptions.from_params(params) if name == "custom" else defaults.custom,
        target_accuracy=float(params.get("target_accuracy", defaults.target_accuracy)),
        arms=arms,
        rerun_of=run.info.run_id,
        project_run_id=getattr(args, "project_run_id", None),
        sweep=sweep_options(run) if name == "sweep" and role == "parent" else defaults.sweep,
    )
    return name, settings


def sweep_options(parent) -> SweepOptions:
    """The sweep options of the last invocation that ran the study of ``parent`` (its ``anncore.sweep_options`` tag).

    A parent made before the tag existed gives its study name (a param) and defaults otherwise.
    """
    logged = parent.data.tags.get(SWEEP_OPTIONS_TAG)
    if logged is not None:
        return SweepOptions.from_json(logged)
    return SweepOptions(study_name=parent.data.params.get("study_name"))


def check_same_dataset(run, settings: RunSettings, name: str) -> None:
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
