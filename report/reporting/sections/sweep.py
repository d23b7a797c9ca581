"""Serves report/_10-sweep.qmd: the architecture search (experiment ``sweep``), from its parent run.

Tables and charts come from the parent's artifacts (``search_space.csv``, ``trials.csv``,
``importances.csv``) and metrics; the champion is the child run named by the parent's tag
``anncore.champion_run_id``; the baseline is the latest finished ``baseline`` run. Each sentence
is one function below returning one f-string, so it can be translated on its own.
"""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from experiments.charts.search import optimization_history, parameter_panels
from reporting.display import Outputs
from reporting.section import Section
from reporting.store import Store, StoredRun
from reporting.training_tables import percent

SECTION = Section("sweep")
BASELINE = Section("baseline")
BEST_SHOWN = 10
PANEL_PARAMETERS = ["n_hidden_layers", "width_1", "activation", "dropout", "learning_rate", "batch_size"]


def _count(n: float, one: str, many: str) -> str:
    return f"{int(n):,} {one if int(n) == 1 else many}"


def status() -> Markdown:
    """Which study and run the section comes from, or the command that produces it."""
    run = SECTION.run()
    if run is None:
        return Markdown(SECTION.missing_message())
    quick = " Made in quick mode (`--quick`): trials were shortened." if run.quick else ""
    return Markdown(f"*{provenance_sentence(run)}{quick}*\n")


def provenance_sentence(run: StoredRun) -> str:
    """Where the search's results come from."""
    trials = _count(run.metrics.get("n_trials", 0), "trial", "trials")
    return f"Results from {run.citation()}, the parent run of Optuna study `{run.params.get('study_name', '?')}` ({trials})."


def selection_sentence(run: StoredRun) -> str:
    """How trials were judged: on validation, never on test."""
    fraction = float(run.params.get("validation_fraction", "nan"))
    train_size = int(run.params.get("dataset_train_size", 0))
    held_out = round(train_size * fraction)
    return (
        f"Every trial trained on {train_size - held_out:,} of the {train_size:,} training images and was judged on "
        f"the other {held_out:,} ({percent(fraction, 0)}, a seeded split): the selection is made on validation "
        "accuracy, and the test set is used once, for the champion retrained on all training images."
    )


@SECTION.output
def search_space(store: Store, run: StoredRun) -> Markdown:
    """The search space, as the parent run logged it."""
    space = store.load_csv(run, "search_space.csv", dtype=str)
    return SECTION.table(space, "Search space", [run])


@SECTION.output
def selection(store: Store, run: StoredRun) -> Markdown:
    """The selection sentence (validation, not test)."""
    return Markdown(selection_sentence(run) + "\n")


@SECTION.output
def history_chart(store: Store, run: StoredRun) -> Outputs | None:
    """Validation accuracy by trial number, with the best-so-far line."""
    trials = store.load_csv(run, "trials.csv")
    shown = trials[trials["value"].notna() | trials["last_val_acc"].notna()]
    if shown.empty:
        return None
    return SECTION.chart(optimization_history(shown), "sweep-history", "Search history: validation accuracy by trial", [run])


@SECTION.output
def parameter_chart(store: Store, run: StoredRun) -> Outputs | None:
    """Validation accuracy against each searched parameter."""
    trials = store.load_csv(run, "trials.csv")
    shown = trials[trials["value"].notna() | trials["last_val_acc"].notna()]
    panels = [name for name in PANEL_PARAMETERS if f"param_{name}" in shown.columns]
    if shown.empty or not panels:
        return None
    return SECTION.chart(parameter_panels(shown, panels), "sweep-parameters", "Validation accuracy against each parameter", [run])


def best_trials_frame(trials: pd.DataFrame, n: int = BEST_SHOWN) -> pd.DataFrame:
    """The ``n`` complete trials with the highest validation accuracy, formatted for reading."""
    best = trials[trials["state"] == "COMPLETE"].sort_values(["value", "number"], ascending=[False, True]).head(n)
    return pd.DataFrame(
        {
            "trial": best["number"].astype(int).astype(str),
            "architecture": best["architecture"],
            "activation": best["param_activation"],
            "dropout": [f"{v:.2f}" for v in best["param_dropout"]],
            "learning rate": [f"{v:.2e}" for v in best["param_learning_rate"]],
            "batch": best["param_batch_size"].astype(int).astype(str),
            "parameters": [f"{int(v):,}" for v in best["parameter_count"]],
            "validation accuracy": [percent(v) for v in best["value"]],
            "run": [f"`{str(r)[:8]}`" for r in best["run_id"]],
        }
    )


@SECTION.output
def best_trials(store: Store, run: StoredRun) -> Markdown:
    """The ten best complete trials."""
    frame = best_trials_frame(store.load_csv(run, "trials.csv"))
    return SECTION.table(frame, f"The {len(frame)} best trials by validation accuracy", [run])


def importance_sentence(importances: pd.DataFrame, note: str) -> str:
    """Which parameter mattered most, or why importances are missing."""
    if importances.empty:
        return f"Parameter importances were not computed ({note})."
    top = importances.sort_values("importance", ascending=False).iloc[0]
    return (
        f"By Optuna's fANOVA importance, `{top['parameter']}` explains the largest share of the variation in "
        f"validation accuracy ({percent(top['importance'], 0)} of the total)."
    )


@SECTION.output
def importances(store: Store, run: StoredRun) -> Markdown:
    """The parameter importances as a table, and the sentence on the largest."""
    table = store.load_csv(run, "importances.csv")
    sentence = importance_sentence(table, run.tags.get("anncore.importances_note", ""))
    if table.empty:
        return Markdown(sentence + "\n")
    frame = pd.DataFrame({"parameter": table["parameter"], "importance": [percent(v, 1) for v in table["importance"]]})
    return Markdown(sentence + "\n\n" + SECTION.table(frame, "Parameter importances (fANOVA)", [run]).data)


def counts_sentence(metrics: dict[str, float]) -> str:
    """How many trials completed, were pruned and failed."""
    return (
        f"Of {_count(metrics.get('n_trials', 0), 'trial', 'trials')}, {int(metrics.get('n_complete', 0)):,} completed, "
        f"{int(metrics.get('n_pruned', 0)):,} were pruned and {int(metrics.get('n_fail', 0)):,} failed."
    )


def epochs_sentence(metrics: dict[str, float]) -> str:
    """The epochs pruning saved."""
    run, full = metrics.get("epochs_run", 0), metrics.get("epochs_without_pruning", 0)
    saved = full - run
    share = f" ({percent(saved / full, 0)})" if full else ""
    return (
        f"The completed and pruned trials ran {_count(run, 'epoch', 'epochs')}, against {int(full):,} without "
        f"pruning: pruning saved {_count(saved, 'epoch', 'epochs')}{share}."
    )


def speed_sentence(metrics: dict[str, float]) -> str:
    """The search's pace in its latest invocation."""
    return (
        f"Its latest invocation ran {_count(metrics.get('trials_this_invocation', 0), 'trial', 'trials')} in "
        f"{metrics.get('search_wall_s', 0):.0f} s with {_count(metrics.get('workers', 1), 'worker', 'workers')}: "
        f"{metrics.get('trials_per_minute', 0):.2f} trials per minute."
    )


@SECTION.output
def pruning(store: Store, run: StoredRun) -> Markdown:
    """Counts by state, epochs saved and pace."""
    items = [counts_sentence(run.metrics), epochs_sentence(run.metrics), speed_sentence(run.metrics)]
    return Markdown("\n".join(f"- {item}" for item in items) + "\n\n" + SECTION.source_line([run]) + "\n")


def _model_row(name: str, run: StoredRun) -> dict[str, str]:
    return {
        "model": name,
        "architecture": run.params.get("architecture", ""),
        "parameters": f"{int(run.params.get('parameter_count', 0)):,}",
        "test accuracy": percent(run.metrics["final_test_acc"]),
        "training time": f"{run.metrics['train_time_s']:.1f} s",
        "run": f"`{run.short_id}`",
    }


def champion_sentence(champion: StoredRun, baseline: StoredRun | None) -> str:
    """The champion against the baseline, in one sentence."""
    acc = champion.metrics["final_test_acc"]
    intro = (f"The champion, trial {champion.params.get('champion_of_trial', '?')} "
             f"({champion.params.get('architecture', '')}, {champion.params.get('activation', '')}), "
             f"reached {percent(acc)} test accuracy")
    if baseline is None:
        return intro + "; there is no baseline run to compare it with."
    difference = (acc - baseline.metrics["final_test_acc"]) * 100
    ratio = int(champion.params.get("parameter_count", 0)) / max(1, int(baseline.params.get("parameter_count", 1)))
    return (
        f"{intro}, {abs(difference):.2f} percentage points {'above' if difference >= 0 else 'below'} the baseline's "
        f"{percent(baseline.metrics['final_test_acc'])}, with {ratio:.2f} times its parameters and "
        f"{champion.metrics['train_time_s']:.1f} s of training against {baseline.metrics['train_time_s']:.1f} s."
    )


@SECTION.output
def champion(store: Store, run: StoredRun) -> Markdown:
    """Champion against baseline: test accuracy, parameters, training time."""
    champion_id = run.tags.get("anncore.champion_run_id")
    if not champion_id:
        return Markdown("No champion was trained: no trial completed.\n")
    best = store.run_by_id("sweep", champion_id)
    baseline = BASELINE.run()
    rows = [_model_row("champion", best)] + ([_model_row("baseline", baseline)] if baseline else [])
    table = SECTION.table(pd.DataFrame(rows), "Champion against baseline on the test set", [best, *([baseline] if baseline else [])])
    return Markdown(champion_sentence(best, baseline) + "\n\n" + table.data)
