"""The end of an architecture search: the parent run's summary and the champion.

Parent artifacts: ``trials.csv`` (:func:`search_runs.trials_table`), ``search_space.csv``,
``best_params.json``, ``importances.csv`` (Optuna's fANOVA importances of the parameters every
complete trial has; empty, with a note in ``importances_note``, when fewer than two trials
completed), ``history.html/.png`` and ``parameters.html/.png``. Parent metrics: the counts by
state, epochs run against epochs without pruning, ``best_value``, ``best_trial_number``, and
for this invocation ``search_wall_s``, ``trials_this_invocation``, ``trials_per_minute`` (the
wall time includes every trial's logging), ``workers`` and ``trials_per_batch`` (the K used, this
machine's: a metric, never a param). The champion is a child run (arm ``champion``) trained on the whole training set
and evaluated once on the test set.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from experiments.search import runs as search_runs
from experiments.search.space import PANEL_PARAMETERS, SEARCH_SPACE, layer_sizes, model_config
from experiments.search.split import Split, validation_split
from experiments.settings import Outcome, RunSettings
from experiments.tracking import artifacts, datasets, registry, runs, store
from experiments.tracking.logged_model import log_model

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from anncore.trainer import Evaluation

    from experiments.search.plan import SearchPlan
    from experiments.tracking.datasets import FashionMNIST

CHAMPION_TAG = "anncore.champion_trial"
MIN_TRIALS_FOR_IMPORTANCE = 2


def parameter_importances(study: optuna.Study, seed: int) -> tuple[pd.DataFrame, str]:
    """Optuna's fANOVA importances (seeded) as ``parameter``, ``importance``; and why empty, if it is."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    empty = pd.DataFrame({"parameter": pd.Series(dtype=str), "importance": pd.Series(dtype=float)})
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return empty, f"{len(complete)} complete trial(s); importances need at least {MIN_TRIALS_FOR_IMPORTANCE}"
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as error:  # noqa: BLE001 - e.g. every complete trial drew the same values
        return empty, f"not computed: {type(error).__name__}: {store.first_line(error)}"
    table = pd.DataFrame({"parameter": list(values), "importance": [float(v) for v in values.values()]})
    return table, ""


def log_search_charts(table: pd.DataFrame) -> None:
    """``history.html/.png`` and ``parameters.html/.png`` of the trials that reported a validation accuracy."""
    from experiments.charts.search import optimization_history, parameter_panels

    shown = table[table["value"].notna() | table["last_val_acc"].notna()]
    if shown.empty:
        return
    artifacts.log_chart(optimization_history(shown), "history")
    panels = [name for name in PANEL_PARAMETERS if f"param_{name}" in shown.columns]
    artifacts.log_chart(parameter_panels(shown, panels), "parameters")


def log_parent_summary(study: optuna.Study, table: pd.DataFrame, settings: RunSettings, first_number: int, wall_s: float,
                       workers: int, trials_per_batch: int = 1) -> None:
    """Log the parent's tables, charts and metrics (the parent run is active)."""
    import mlflow

    artifacts.log_csv(table, "trials.csv")
    artifacts.log_csv(pd.DataFrame(SEARCH_SPACE), "search_space.csv")
    importances, note = parameter_importances(study, settings.seed)
    artifacts.log_csv(importances, "importances.csv")
    store.with_retry(mlflow.set_tag, "anncore.importances_note", note or "fANOVA (optuna.importance), seeded")
    metrics = search_runs.search_metrics(table)
    this_invocation = int((table["number"] >= first_number).sum()) if len(table) else 0
    metrics.update(
        search_wall_s=wall_s,
        trials_this_invocation=float(this_invocation),
        trials_per_minute=this_invocation / (wall_s / 60.0) if wall_s > 0 else float("nan"),
        workers=float(workers),
        trials_per_batch=float(trials_per_batch),
    )
    best = best_trial(study)
    if best is not None:
        metrics.update(best_value=float(best.value), best_trial_number=float(best.number))
        artifacts.log_json({"number": best.number, "value": best.value, "params": best.params}, "best_params.json")
        store.with_retry(mlflow.set_tags, {f"anncore.best.{k}": str(v) for k, v in best.params.items()})
    runs.log_metrics(metrics)
    log_search_charts(table)
    print(cost_line(metrics), flush=True)


def cost_line(metrics: dict[str, float]) -> str:
    """One line on the search's cost: trials by state, pace, epochs run against epochs without pruning."""
    return (
        f"sweep: {int(metrics['trials_this_invocation'])} trials in {metrics['search_wall_s']:.0f} s with "
        f"{int(metrics['workers'])} worker(s){_batch_words(metrics)}, {metrics['trials_per_minute']:.2f} trials/min; study: "
        f"{int(metrics['n_complete'])} complete, {int(metrics['n_pruned'])} pruned, {int(metrics['n_fail'])} failed; "
        f"epochs run {int(metrics['epochs_run'])} of {int(metrics['epochs_without_pruning'])} without pruning "
        f"(saved {int(metrics['epochs_saved'])})"
    )


def _batch_words(metrics: dict[str, float]) -> str:
    """`` and K trials per batch`` when trials were stacked, else nothing (the line as it always was)."""
    per_batch = int(metrics.get("trials_per_batch", 1))
    return f" and {per_batch} trials per batch" if per_batch > 1 else ""


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial with the highest validation accuracy (lowest number on ties), or None."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def _champion_metrics(result_history: pd.DataFrame, evaluation: Evaluation) -> dict[str, float]:
    last = result_history.iloc[-1]
    return {
        "final_train_loss": last["train_loss"],
        "final_train_acc": last["train_acc"],
        "final_test_loss": evaluation.loss,
        "final_test_acc": evaluation.accuracy,
        "train_time_s": result_history["epoch_time_s"].sum(),
    }


def train_champion(settings: RunSettings, data: FashionMNIST, best: optuna.trial.FrozenTrial, epochs: int, split: Split,
                   study_name: str) -> tuple[str, float]:
    """Retrain ``best``'s configuration on the whole training set; evaluate once on test; log and register it.

    Returns the champion run's id and its test accuracy.
    """
    import mlflow

    from anncore.models import architecture_string
    from anncore.trainer import evaluate, set_seed, train

    params, sizes = best.params, layer_sizes(best.params)
    config = settings.train_config(epochs=epochs, batch_size=int(params["batch_size"]), learning_rate=float(params["learning_rate"]))
    with runs.tracked_run(settings, search_runs.EXPERIMENT, role="child", arm="champion", seed=settings.seed,
                          run_name=f"champion-trial-{best.number}") as run:
        store.with_retry(mlflow.set_tags, {search_runs.STUDY_TAG: study_name, CHAMPION_TAG: str(best.number)})
        datasets.log_input(data)
        set_seed(config.seed)
        model = model_config(params).build()
        runs.log_params({**config.hyperparameters(), **model.config.hyperparameters(),
                         "parameter_count": model.count_parameters(), "champion_of_trial": best.number,
                         "selected_on": "validation", **data.params()})
        # The trainer wants data to evaluate each epoch: the validation split, which is part of
        # the champion's own training data, so those numbers are not logged; test comes once.
        result = train(model, data.train, split.validation, config)
        history = result.history[["epoch", "train_loss", "train_acc", "epoch_time_s", "samples_per_sec"]]
        evaluation = evaluate(model, data.test)
        logger = runs.EpochMetricsLogger()
        for row in history.to_dict(orient="records"):
            logger.add(runs.row_metrics(row), step=int(row["epoch"]))
        logger.flush(final=_champion_metrics(history, evaluation))
        artifacts.log_csv(history, "history.csv")
        artifacts.log_csv(evaluation.per_class_accuracy, "per_class_accuracy.csv")
        info = log_model(result.model, data.test.x[:2].numpy().reshape(2, -1))
        registry.register(info.model_uri, registry.CHAMPION_ALIAS, f"search champion: trial {best.number}, {architecture_string(sizes)}")
    return run.info.run_id, float(evaluation.accuracy)


def finish_search(settings: RunSettings, plan: SearchPlan, storage: BaseStorage, data: FashionMNIST, parent_id: str,
                  first_number: int, wall_s: float) -> Outcome:
    """Log the parent's summary, then retrain and register the champion unless it already is."""
    import mlflow
    import optuna

    study = optuna.load_study(study_name=plan.study_name, storage=storage)
    optuna.storages.fail_stale_trials(study)
    table = search_runs.trials_table(study, plan.epochs)
    log_parent_summary(study, table, settings, first_number, wall_s, plan.workers, plan.trials_per_batch)
    best = best_trial(study)
    if best is None:
        raise RuntimeError(f"no trial of study {plan.study_name!r} completed; see the FAILED trial runs for why")
    parent = store.with_retry(mlflow.MlflowClient().get_run, parent_id)
    if parent.data.tags.get(CHAMPION_TAG) == str(best.number) and "champion_test_acc" in parent.data.metrics:
        return Outcome(parent_id, f"champion (trial {best.number}) test acc", parent.data.metrics["champion_test_acc"])
    split = validation_split(data.train, settings.seed)
    champion_id, accuracy = train_champion(settings, data, best, plan.epochs, split, plan.study_name)
    runs.log_metrics({"champion_test_acc": accuracy})
    store.with_retry(mlflow.set_tags, {CHAMPION_TAG: str(best.number), "anncore.champion_run_id": champion_id})
    if math.isnan(accuracy):
        raise RuntimeError("the champion's test accuracy is not a number")
    return Outcome(parent_id, f"champion (trial {best.number}) test acc", accuracy)
