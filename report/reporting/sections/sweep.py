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
from reporting.i18n import _, chart_language, integer, ngettext, translated
from reporting.section import Section
from reporting.store import Store, StoredRun
from reporting.training_tables import percent

SECTION = Section("sweep")
BASELINE = Section("baseline")
BEST_SHOWN = 10
PANEL_PARAMETERS = ["n_hidden_layers", "width_1", "activation", "dropout", "learning_rate", "batch_size"]


def _trials(n: float) -> str:
    return ngettext("{n} trial", "{n} trials", int(n)).format(n=integer(n))


def _epochs(n: float) -> str:
    return ngettext("{n} epoch", "{n} epochs", int(n)).format(n=integer(n))


def _workers(n: float) -> str:
    return ngettext("{n} worker", "{n} workers", int(n)).format(n=integer(n))


def status() -> Markdown:
    """Which study and run the section comes from, or the command that produces it."""
    run = SECTION.run()
    if run is None:
        return Markdown(SECTION.missing_message())
    quick = " " + _("Made in quick mode (`--quick`): trials were shortened.") if run.quick else ""
    return Markdown(f"*{provenance_sentence(run)}{quick}*\n")


def provenance_sentence(run: StoredRun) -> str:
    """Where the search's results come from."""
    trials = _trials(run.metrics.get("n_trials", 0))
    return _("Results from {run}, the parent run of Optuna study `{study}` ({trials}).").format(
        run=run.citation(), study=run.params.get("study_name", "?"), trials=trials
    )


def selection_sentence(run: StoredRun) -> str:
    """How trials were judged: on validation, never on test."""
    fraction = float(run.params.get("validation_fraction", "nan"))
    train_size = int(run.params.get("dataset_train_size", 0))
    held_out = round(train_size * fraction)
    return _(
        "Every trial trained on {trained} of the {total} training images and was judged on the other {held_out} "
        "({fraction}, a seeded split): the selection is made on validation accuracy, and the test set is used once, "
        "for the champion retrained on all training images."
    ).format(
        trained=integer(train_size - held_out), total=integer(train_size), held_out=integer(held_out),
        fraction=percent(fraction, 0),
    )  # fmt: skip


@SECTION.output
def search_space(store: Store, run: StoredRun) -> Markdown:
    """The search space, as the parent run logged it."""
    space = store.load_csv(run, "search_space.csv", dtype=str).fillna("")
    space = space.apply(lambda column: column.map(translated) if column.name != "parameter" else column)
    headers = {"parameter": _("parameter"), "distribution": _("distribution"), "values": _("values")}
    return SECTION.table(space.rename(columns=headers), _("Search space"), [run], "sweep-space")


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
    chart = optimization_history(shown, language=chart_language())
    return SECTION.chart(chart, "sweep-history", _("Search history: validation accuracy by trial"), [run])


@SECTION.output
def parameter_chart(store: Store, run: StoredRun) -> Outputs | None:
    """Validation accuracy against each searched parameter."""
    trials = store.load_csv(run, "trials.csv")
    shown = trials[trials["value"].notna() | trials["last_val_acc"].notna()]
    panels = [name for name in PANEL_PARAMETERS if f"param_{name}" in shown.columns]
    if shown.empty or not panels:
        return None
    chart = parameter_panels(shown, panels, language=chart_language())
    return SECTION.chart(chart, "sweep-parameters", _("Validation accuracy against each parameter"), [run])


def best_trials_frame(trials: pd.DataFrame, n: int = BEST_SHOWN) -> pd.DataFrame:
    """The ``n`` complete trials with the highest validation accuracy, formatted for reading."""
    best = trials[trials["state"] == "COMPLETE"].sort_values(["value", "number"], ascending=[False, True]).head(n)
    return pd.DataFrame(
        {
            _("trial"): best["number"].astype(int).astype(str),
            _("architecture"): best["architecture"],
            _("activation"): best["param_activation"],
            "dropout": [f"{v:.2f}" for v in best["param_dropout"]],
            _("learning rate"): [f"{v:.2e}" for v in best["param_learning_rate"]],
            _("batch"): best["param_batch_size"].astype(int).astype(str),
            _("parameters"): [integer(v) for v in best["parameter_count"]],
            _("validation accuracy"): [percent(v) for v in best["value"]],
            _("run"): [f"`{str(r)[:8]}`" for r in best["run_id"]],
        }
    )


@SECTION.output
def best_trials(store: Store, run: StoredRun) -> Markdown:
    """The ten best complete trials."""
    frame = best_trials_frame(store.load_csv(run, "trials.csv"))
    caption = ngettext("The {n} best trial by validation accuracy", "The {n} best trials by validation accuracy", len(frame))
    return SECTION.table(frame, caption.format(n=len(frame)), [run], "sweep-best")


def importance_sentence(importances: pd.DataFrame, note: str) -> str:
    """Which parameter mattered most, or why importances are missing."""
    if importances.empty:
        return _("Parameter importances were not computed ({note}).").format(note=translated(note))
    top = importances.sort_values("importance", ascending=False).iloc[0]
    return _(
        "By Optuna's fANOVA importance, `{parameter}` explains the largest share of the variation in validation "
        "accuracy ({share} of the total)."
    ).format(parameter=top["parameter"], share=percent(top["importance"], 0))


@SECTION.output
def importances(store: Store, run: StoredRun) -> Markdown:
    """The parameter importances as a table, and the sentence on the largest."""
    table = store.load_csv(run, "importances.csv")
    sentence = importance_sentence(table, run.tags.get("anncore.importances_note", ""))
    if table.empty:
        return Markdown(sentence + "\n")
    frame = pd.DataFrame({_("parameter"): table["parameter"], _("importance"): [percent(v, 1) for v in table["importance"]]})
    return Markdown(sentence + "\n\n" + SECTION.table(frame, _("Parameter importances (fANOVA)"), [run], "sweep-importances").data)


def counts_sentence(metrics: dict[str, float]) -> str:
    """How many trials completed, were pruned and failed."""
    return _("Of {trials}, {complete} completed, {pruned} were pruned and {failed} failed.").format(
        trials=_trials(metrics.get("n_trials", 0)),
        complete=integer(metrics.get("n_complete", 0)),
        pruned=integer(metrics.get("n_pruned", 0)),
        failed=integer(metrics.get("n_fail", 0)),
    )


def epochs_sentence(metrics: dict[str, float]) -> str:
    """The epochs pruning saved."""
    run, full = metrics.get("epochs_run", 0), metrics.get("epochs_without_pruning", 0)
    saved = full - run
    share = f" ({percent(saved / full, 0)})" if full else ""
    return _(
        "The completed and pruned trials ran {run}, against {full} without pruning: pruning saved {saved}{share}."
    ).format(run=_epochs(run), full=integer(full), saved=_epochs(saved), share=share)


def speed_sentence(metrics: dict[str, float]) -> str:
    """The search's pace in its latest invocation: a whole number of trials per minute from 10 on
    ("90.58 trials per minute" had more digits than the pace means), one decimal below."""
    rate = metrics.get("trials_per_minute", 0)
    shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"
    # A whole number takes its plural form; a fraction reads as "2" does (Russian: 2,5 испытания).
    count = int(shown) if rate >= 10 else 2
    return ngettext(
        "Its latest invocation ran {trials} in {seconds} s with {workers}: {rate} trial per minute.",
        "Its latest invocation ran {trials} in {seconds} s with {workers}: {rate} trials per minute.",
        count,
    ).format(
        trials=_trials(metrics.get("trials_this_invocation", 0)),
        seconds=f"{metrics.get('search_wall_s', 0):.0f}",
        workers=_workers(metrics.get("workers", 1)),
        rate=shown,
    )


@SECTION.output
def pruning(store: Store, run: StoredRun) -> Markdown:
    """Counts by state, epochs saved and pace."""
    items = [counts_sentence(run.metrics), epochs_sentence(run.metrics), speed_sentence(run.metrics)]
    return Markdown("\n".join(f"- {item}" for item in items) + "\n\n" + SECTION.source_line([run]) + "\n")


def _model_row(name: str, run: StoredRun) -> dict[str, str]:
    return {
        _("model"): name,
        _("architecture"): run.params.get("architecture", ""),
        _("parameters"): integer(run.params.get("parameter_count", 0)),
        _("test accuracy"): percent(run.metrics["final_test_acc"]),
        _("training time"): _("{seconds} s").format(seconds=f"{run.metrics['train_time_s']:.1f}"),
        _("run"): f"`{run.short_id}`",
    }


def champion_sentence(champion: StoredRun, baseline: StoredRun | None) -> str:
    """The champion against the baseline, in one sentence."""
    acc = champion.metrics["final_test_acc"]
    intro = _("The champion, trial {trial} ({architecture}, {activation}), reached {accuracy} test accuracy").format(
        trial=champion.params.get("champion_of_trial", "?"), architecture=champion.params.get("architecture", ""),
        activation=champion.params.get("activation", ""), accuracy=percent(acc),
    )  # fmt: skip
    if baseline is None:
        return intro + _("; there is no baseline run to compare it with.")
    difference = (acc - baseline.metrics["final_test_acc"]) * 100
    comparison = (
        _(", {points} percentage points above the baseline's {baseline}, with {parameters} and {seconds} s of training against {baseline_seconds} s.")
        if difference >= 0
        else _(", {points} percentage points below the baseline's {baseline}, with {parameters} and {seconds} s of training against {baseline_seconds} s.")
    )
    seconds, baseline_seconds = distinct(champion.metrics["train_time_s"], baseline.metrics["train_time_s"])
    return intro + comparison.format(
        points=f"{abs(difference):.2f}", baseline=percent(baseline.metrics["final_test_acc"]),
        parameters=parameters_phrase(int(champion.params.get("parameter_count", 0)), int(baseline.params.get("parameter_count", 0))),
        seconds=seconds, baseline_seconds=baseline_seconds,
    )  # fmt: skip


def parameters_phrase(count: int, baseline_count: int) -> str:
    """The champion's parameter count against the baseline's: "0.73 times its parameters", or, where
    the ratio reads 1.00, "the same number" or "about as many" ("1.00 times its parameters")."""
    if count == baseline_count:
        return _("the same number of parameters")
    ratio = count / max(1, baseline_count)
    if f"{ratio:.2f}" == "1.00":
        return _("about as many parameters")
    return _("{ratio} times its parameters").format(ratio=f"{ratio:.2f}")


def distinct(a: float, b: float, decimals: int = 1, most: int = 3) -> tuple[str, str]:
    """``a`` and ``b`` with ``decimals`` decimals, or more (up to ``most``) until they read differently
    ("1.4 s of training against 1.4 s" compared two different times)."""
    while decimals < most and f"{a:.{decimals}f}" == f"{b:.{decimals}f}":
        decimals += 1
    return f"{a:.{decimals}f}", f"{b:.{decimals}f}"


@SECTION.output
def champion(store: Store, run: StoredRun) -> Markdown:
    """Champion against baseline: test accuracy, parameters, training time."""
    champion_id = run.tags.get("anncore.champion_run_id")
    if not champion_id:
        return Markdown(_("No champion was trained: no trial completed.") + "\n")
    best = store.run_by_id("sweep", champion_id)
    baseline = BASELINE.run()
    rows = [_model_row(_("champion"), best)] + ([_model_row(_("baseline"), baseline)] if baseline else [])
    runs = [best, *([baseline] if baseline else [])]
    table = SECTION.table(pd.DataFrame(rows), _("Champion against baseline on the test set"), runs, "sweep-champion")
    return Markdown(champion_sentence(best, baseline) + "\n\n" + table.data)
