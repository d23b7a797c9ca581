"""Serves report/_09-performance.qmd: performance, from the latest finished ``benchmark`` run.

``python -m experiments.benchmark --log-mlflow`` times four training pipelines on the same
images and logs a parent run whose ``benchmark.json`` holds every figure shown here: per
pipeline the timings, throughput, training FLOP rate and memory; the fp32 matrix product's rate
(the machine's peak) the FLOP rates are divided by; the ratios and the targets some of them
have; the settings and the machine. Ratios and targets are read as the run wrote them, so a ratio the
benchmark adds appears here without a change.
"""

from __future__ import annotations

import math
import re

import pandas as pd
from IPython.display import Markdown

from experiments.charts.performance import pipeline_seconds
from reporting.display import Outputs
from reporting.i18n import N_, _, chart_language, grouped, integer, ngettext, translated
from reporting.section import Section
from reporting.store import Store, StoredRun, format_time

SECTION = Section("benchmark")
RESULTS = "benchmark.json"
NO_VALUE = "—"
# Table header -> key of ``pipelines.<name>`` in benchmark.json, for the numeric columns.
PIPELINE_FIGURES: dict[str, str] = {
    N_("s / epoch"): "seconds_per_epoch",
    N_("samples / s"): "samples_per_sec",
    N_("µs / step"): "microseconds_per_step",
    N_("s per 60,000 images"): "seconds_per_60000_images",
    N_("training GFLOPS"): "training_gflops",
    N_("fraction of peak"): "fraction_of_peak",
    N_("eval s / epoch"): "eval_seconds_per_epoch",
    N_("peak memory (MiB)"): "peak_memory_mib",
}
NO_BREAK_HYPHEN = "\u2011"
# What the known ratios divide, in the symbols of the section's definitions; others show their key only.
RATIO_MEANINGS: dict[str, str] = {
    "notebook_over_anncore": N_("$S$: notebook ÷ anncore, s / epoch"),
    "anncore_over_floor": N_("$F$: anncore ÷ floor, s / epoch"),
    "floor_fraction_of_peak": N_("$P_\\text{floor}$: floor's training GFLOPS ÷ peak"),
    "anncore_fraction_of_peak": N_("$P_\\text{anncore}$: anncore's training GFLOPS ÷ peak"),
    "anncore_mlflow_over_anncore": N_("$O$: logging overhead per run"),
    "anncore_mlflow_over_anncore_whole_runs": N_("anncore_mlflow ÷ anncore, whole runs"),
    "notebook_over_anncore_with_eval": N_("$S$ with each epoch's evaluation included"),
    "anncore_over_captured_floor": N_("anncore ÷ captured floor (CUDA graph), s / epoch"),
    "floor_over_captured_floor": N_("floor ÷ captured floor (CUDA graph), s / epoch"),
}
RELATIONS: dict[str, str] = {">=": "≥", "<=": "≤"}
# The notes in benchmark.json's optimizer names (experiments.benchmark.pipelines), translated in place.
OPTIMIZER_NOTES = (N_("torch default on CPU"), N_("torch default on CUDA"))


# --- formatting ----------------------------------------------------------------------------


def figure(value: float | None, digits: int = 3) -> str:
    """A measured figure to ``digits`` significant digits, in plain notation with thousands separators.

    Parameters
    ----------
    value : float or None
        The figure; None or NaN (a pipeline without that figure) gives ``—``.
    digits : int, default 3
        Significant digits; whole-number digits are never dropped (``2758.7`` -> ``2,759``).

    Returns
    -------
    str
        E.g. ``0.663``, ``77.7``, ``0.00217``, ``25,479``.
    """
    if value is None or not math.isfinite(value):
        return NO_VALUE
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return grouped(f"{value:,.{decimals}f}")


def ratio_text(value: float | None) -> str:
    """A ratio with three decimals (``3.571``; two would show 1.0504 as the bound 1.05 it missed), or ``—``."""
    return NO_VALUE if value is None or not math.isfinite(value) else f"{value:.3f}"


def target_text(target: str) -> str:
    """A target as benchmark.json writes it (``">= 5"``) with the relation as a symbol (``≥ 5``)."""
    relation, _, bound = target.partition(" ")
    return f"{RELATIONS.get(relation, relation)} {bound}".strip()


def verdict(target: dict | None) -> str:
    """``met`` or ``missed`` for a target entry of benchmark.json, ``—`` for a ratio without one."""
    if target is None:
        return NO_VALUE
    return _("met") if target["met"] else _("missed")


# --- provenance ----------------------------------------------------------------------------


def optimizer_text(name: str) -> str:
    """An optimizer as benchmark.json names it (``Adam for-loop (torch default on CPU)``), its note translated."""
    for note in OPTIMIZER_NOTES:
        name = name.replace(note, _(note))
    # A narrow table cell broke "for-loop" at its hyphen; a no-break hyphen (U+2011, which the
    # PDF's Libertinus Serif draws as a hyphen) keeps a hyphenated word whole.
    return re.sub(r"(?<=\w)-(?=\w)", NO_BREAK_HYPHEN, name)


def load_results(store: Store, run: StoredRun) -> dict:
    """The run's ``benchmark.json``."""
    return store.load_json(run, RESULTS)


def provenance_sentence(run: StoredRun, results: dict, children: int) -> str:
    """Which run the figures come from, and the data, settings and machine they were measured with.

    Parameters
    ----------
    run : StoredRun
        The benchmark's parent run.
    results : dict
        Its ``benchmark.json``.
    children : int
        How many finished child runs (the MLflow pipeline's training runs) it has.
    """
    s, env = results["settings"], results["environment"]
    child_note = ngettext(
        ", with {n} child run (the MLflow pipeline's training runs)",
        ", with {n} child runs (the MLflow pipeline's training runs)",
        children,
    ).format(n=children)
    cited = "*" + _("Results from {run}{children}; it finished {time}.").format(
        run=run.citation(), children=child_note if children else "", time=format_time(run.end_time)
    ) + "*"
    conditions = _(
        "Every pipeline trained on {train} images ({mode}) and was evaluated on {test}, in batches of {batch}, "
        "for {epochs} epochs per run ({warmup} of them warm-up, left out of the medians), in {rounds} of every "
        "pipeline; device `{device}` ({device_name}) with {threads} torch threads on {cpus} CPUs, torch {torch}. "
        "The load average was {load_start} at the start and {load_end} at the end."
    ).format(
        train=integer(s["train_size"]), mode=translated(s["train_size_mode"]), test=integer(s["test_size"]),
        batch=s["batch_size"], epochs=s["epochs"], warmup=s["warmup_epochs"],
        rounds=ngettext("{n} round", "{n} rounds", s["rounds"]).format(n=s["rounds"]),
        device=env["device"], device_name=env["device_name"], threads=env["torch_threads"], cpus=env["cpu_count"],
        torch=env["torch_version"], load_start=f"{s['load_average_start']:.2f}", load_end=f"{s['load_average_end']:.2f}",
    )  # fmt: skip
    quick = (
        " " + _("Made in quick mode (`--quick`): a few batches per epoch, so the timings are a smoke test, not a measurement.")
        if s.get("quick")
        else ""
    )
    return f"{cited} {conditions}{quick}"


def status() -> Markdown:
    """Which benchmark run the figures come from and how it was measured, or the command that makes one."""
    run = SECTION.run()
    if run is None:
        return Markdown(SECTION.missing_message())
    store = SECTION.store()
    sentence = provenance_sentence(run, load_results(store, run), len(store.child_runs(run)))
    return Markdown(sentence + "\n")


# --- tables --------------------------------------------------------------------------------


def pipeline_frame(pipelines: dict[str, dict]) -> pd.DataFrame:
    """One row per pipeline, in the run's order: what it runs, its figures and its optimizer.

    Parameters
    ----------
    pipelines : dict
        ``benchmark.json``'s ``pipelines``: name -> figures.
    """
    rows = []
    for name, figures in pipelines.items():
        row = {_("pipeline"): f"`{name}`", _("what it runs"): translated(figures.get("description", ""))}
        row.update({_(header): figure(figures.get(key)) for header, key in PIPELINE_FIGURES.items()})
        row[_("optimizer")] = optimizer_text(figures.get("optimizer", NO_VALUE))
        rows.append(row)
    return pd.DataFrame(rows)


def ratio_frame(ratios: dict[str, float], targets: dict[str, dict]) -> pd.DataFrame:
    """One row per ratio the run measured: its meaning, value, target and whether it was met.

    Parameters
    ----------
    ratios : dict
        ``benchmark.json``'s ``ratios``: name -> value.
    targets : dict
        ``benchmark.json``'s ``targets``: name -> ``{"target": ">= 5", "met": bool}``; ratios
        without an entry show ``—`` as target and result.
    """
    rows = []
    for name, value in ratios.items():
        target = targets.get(name)
        rows.append(
            {
                _("ratio"): f"`{name}`",
                _("what it divides"): _(RATIO_MEANINGS[name]) if name in RATIO_MEANINGS else NO_VALUE,
                _("value"): ratio_text(value),
                _("target"): target_text(target["target"]) if target else NO_VALUE,
                _("result"): verdict(target),
            }
        )
    return pd.DataFrame(rows)


def chart_frame(pipelines: dict[str, dict]) -> pd.DataFrame:
    """The chart's table: ``pipeline``, ``seconds_per_60000_images``, ``description``, in the run's order."""
    return pd.DataFrame(
        {
            "pipeline": list(pipelines),
            "seconds_per_60000_images": [figures["seconds_per_60000_images"] for figures in pipelines.values()],
            "description": [translated(figures.get("description", "")) for figures in pipelines.values()],
        }
    )


# --- findings ------------------------------------------------------------------------------


def _target_items(names: list[str], ratios: dict[str, float], targets: dict[str, dict]) -> str:
    """``a (value, target ≥ 5)``, ``a (...) and b (...)``, ``a (...), b (...) and c (...)``."""
    items = [
        _("`{name}` ({value}, target {target})").format(
            name=name, value=ratio_text(ratios.get(name)), target=target_text(targets[name]["target"])
        )
        for name in names
    ]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + _(" and ") + items[-1]


def targets_sentence(ratios: dict[str, float], targets: dict[str, dict]) -> str:
    """How many targets the run met, each with its value and target."""
    if not targets:
        return _("The run records no targets for its ratios.")
    met = [name for name, target in targets.items() if target["met"]]
    missed = [name for name, target in targets.items() if not target["met"]]
    if not missed:
        return ngettext(
            "The run met all {n} of its targets: {met}.", "The run met all {n} of its targets: {met}.", len(targets)
        ).format(n=len(targets), met=_target_items(met, ratios, targets))
    if not met:
        return ngettext(
            "The run met none of its {n} targets: it missed {missed}.",
            "The run met none of its {n} targets: it missed {missed}.",
            len(targets),
        ).format(n=len(targets), missed=_target_items(missed, ratios, targets))
    return ngettext(
        "The run met {k} of its {n} targets, {met}, and missed {missed}.",
        "The run met {k} of its {n} targets, {met}, and missed {missed}.",
        len(targets),
    ).format(k=len(met), n=len(targets), met=_target_items(met, ratios, targets), missed=_target_items(missed, ratios, targets))


def speed_sentence(pipelines: dict[str, dict]) -> str:
    """The fastest and slowest pipeline per 60,000 images."""
    seconds = {name: figures["seconds_per_60000_images"] for name, figures in pipelines.items()}
    fastest, slowest = min(seconds, key=seconds.get), max(seconds, key=seconds.get)
    return _(
        "Per 60,000 training images the fastest pipeline is `{fastest}` ({fastest_seconds} s), "
        "the slowest `{slowest}` ({slowest_seconds} s)."
    ).format(fastest=fastest, fastest_seconds=figure(seconds[fastest]), slowest=slowest, slowest_seconds=figure(seconds[slowest]))


def peak_sentence(results: dict) -> str:
    """The fp32 matrix product's rate, and the floor's and anncore's training FLOP rates as fractions of it.

    Empty for a benchmark run made before the peak was measured (its ``benchmark.json`` has no ``peak``).
    """
    peak, flops, pipelines = results.get("peak"), results.get("flops"), results["pipelines"]
    if not peak or not flops:
        return ""
    n = integer(peak["size"])
    loads = ", ".join(f"{load:.2f}" for load in peak["load_average_each"])
    rates = _(" and ").join(
        _("`{name}` at {gflops} GFLOPS ({fraction} of the peak)").format(
            name=name, gflops=figure(pipelines[name]["training_gflops"]), fraction=ratio_text(pipelines[name]["fraction_of_peak"])
        )
        for name in ("floor", "anncore")
    )
    return _(
        "An fp32 matrix product of {n} × {n} by {n} × {n} ran at {gflops} GFLOPS, the median of {timed} products "
        "timed before the rounds (best {best}; load average {loads} when timed). Counting 6 × the {madds} forward "
        "multiply-adds of one sample ({mflop} MFLOP), training ran {rates}."
    ).format(
        n=n, gflops=figure(peak["gflops"]), timed=peak["products_timed"], best=figure(peak["best_gflops"]), loads=loads,
        madds=integer(flops["forward_multiply_adds_per_sample"]), mflop=figure(flops["training_flops_per_sample"] / 1e6),
        rates=rates,
    )  # fmt: skip


def profile_sentence(results: dict) -> str:
    """Where a profiled anncore epoch spent its time, by kind of work, largest first (empty without a profile).

    ``benchmark.json``'s ``profile`` is there when the benchmark ran with ``--profile``.
    """
    profiled, peak = results.get("profile"), results.get("peak")
    if not profiled:
        return ""
    shares = sorted(profiled["fractions"].items(), key=lambda item: item[1], reverse=True)
    parts = ", ".join(f"{_(kind)} {share:.1%}" for kind, share in shares)
    text = _(
        "Under `torch.profiler`, one anncore epoch of {samples} samples ({seconds} s, the profiler's cost "
        "included) went to: {parts}."
    ).format(samples=integer(profiled["samples"]), seconds=figure(profiled["wall_seconds"]), parts=parts)
    if profiled.get("matmul_gflops") is not None:
        rate = f"{figure(profiled['matmul_gflops'])} GFLOPS"
        of_peak = (
            _(", {fraction} of the peak").format(fraction=ratio_text(profiled["matmul_gflops"] / peak["gflops"]))
            if peak
            else ""
        )
        text += " " + _("The matrix products themselves ran at {rate}{of_peak}, counting the FLOPs they execute.").format(
            rate=rate, of_peak=of_peak
        )
    return text


def notebook_sentence(ratios: dict[str, float]) -> str:
    """anncore's speed-up over the notebook's pipeline, without a verdict (it moves with the machine)."""
    if "notebook_over_anncore" not in ratios:
        return ""
    return _(
        "The anncore trainer runs an epoch {ratio} times as fast as the notebook's pipeline; $S$ has no target, "
        "since the notebook's single-threaded per-sample transforms speed up with the machine's state more than "
        "matrix products do."
    ).format(ratio=f"$S = {ratio_text(ratios['notebook_over_anncore'])}$")


# --- chunks --------------------------------------------------------------------------------


@SECTION.output
def pipeline_table(store: Store, run: StoredRun) -> Markdown:
    """Per pipeline: what it runs and its optimizer, then its figures (seconds per epoch, throughput,
    evaluation time, memory), as two tables sharing the pipeline column.

    As one table of eleven columns the PDF set it at 5.6 pt, the descriptions and the optimizer
    wrapped word by word beside the numbers; split, each is set at the tables' usual size."""
    frame = pipeline_frame(load_results(store, run)["pipelines"])
    name, description, optimizer = _("pipeline"), _("what it runs"), _("optimizer")
    figures = [column for column in frame.columns if column not in (description, optimizer)]
    described = SECTION.table(frame[[name, description, optimizer]], _("Benchmark: the training pipelines"), [run], "performance-pipelines")
    measured = SECTION.table(frame[figures], _("Benchmark: each pipeline's times, rates and memory"), [run], "performance-figures")
    return Markdown(described.data + "\n" + measured.data)


@SECTION.output
def ratio_table(store: Store, run: StoredRun) -> Markdown:
    """Every ratio the run measured, against its target where it has one."""
    results = load_results(store, run)
    frame = ratio_frame(results["ratios"], results.get("targets", {}))
    return SECTION.table(frame, _("Benchmark: ratios and their targets"), [run], "performance-ratios")


@SECTION.output
def pipeline_chart(store: Store, run: StoredRun) -> Outputs:
    """Seconds per 60,000 training images, one bar per pipeline."""
    chart = pipeline_seconds(chart_frame(load_results(store, run)["pipelines"]), language=chart_language())
    return SECTION.chart(chart, "performance-pipelines", _("Benchmark: seconds per 60,000 images per pipeline"), [run])


@SECTION.output
def findings(store: Store, run: StoredRun) -> Markdown:
    """Which targets the run met, the peak and the FLOP rates, the fastest pipeline, from benchmark.json."""
    results = load_results(store, run)
    sentences = [
        targets_sentence(results["ratios"], results.get("targets", {})),
        peak_sentence(results),
        profile_sentence(results),
        speed_sentence(results["pipelines"]),
        notebook_sentence(results["ratios"]),
    ]
    return Markdown(SECTION.findings_lead_in() + " ".join(sentence for sentence in sentences if sentence) + " "
                    + SECTION.source_line([run]) + "\n")
