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

import pandas as pd
from IPython.display import Markdown

from experiments.charts.performance import pipeline_seconds
from reporting.display import Outputs
from reporting.section import Section
from reporting.store import Store, StoredRun, format_time

SECTION = Section("benchmark")
RESULTS = "benchmark.json"
NO_VALUE = "—"
# Table header -> key of ``pipelines.<name>`` in benchmark.json, for the numeric columns.
PIPELINE_FIGURES: dict[str, str] = {
    "s / epoch": "seconds_per_epoch",
    "samples / s": "samples_per_sec",
    "s per 60,000 images": "seconds_per_60000_images",
    "training GFLOPS": "training_gflops",
    "fraction of peak": "fraction_of_peak",
    "eval s / epoch": "eval_seconds_per_epoch",
    "peak memory (MiB)": "peak_memory_mib",
}
# What the known ratios divide, in the symbols of the section's definitions; others show their key only.
RATIO_MEANINGS: dict[str, str] = {
    "notebook_over_anncore": "$S$: notebook ÷ anncore, s / epoch",
    "anncore_over_floor": "$F$: anncore ÷ floor, s / epoch",
    "floor_fraction_of_peak": "$P_\\text{floor}$: floor's training GFLOPS ÷ peak",
    "anncore_fraction_of_peak": "$P_\\text{anncore}$: anncore's training GFLOPS ÷ peak",
    "anncore_mlflow_over_anncore": "$O$: logging overhead per run",
    "anncore_mlflow_over_anncore_whole_runs": "anncore_mlflow ÷ anncore, whole runs",
    "notebook_over_anncore_with_eval": "$S$ with each epoch's evaluation included",
}
RELATIONS: dict[str, str] = {">=": "≥", "<=": "≤"}


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
    return f"{value:,.{decimals}f}"


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
    return "met" if target["met"] else "missed"


# --- provenance ----------------------------------------------------------------------------


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
    child_note = f", with {children} child run{'s' if children != 1 else ''} (the MLflow pipeline's training runs)"
    cited = f"*Results from {run.citation()}{child_note if children else ''}; it finished {format_time(run.end_time)}.*"
    rounds = f"{s['rounds']} round{'s' if s['rounds'] != 1 else ''}"
    conditions = (
        f"Every pipeline trained on {s['train_size']:,} images ({s['train_size_mode']}) and was evaluated "
        f"on {s['test_size']:,}, in batches of {s['batch_size']}, for {s['epochs']} epochs per run "
        f"({s['warmup_epochs']} of them warm-up, left out of the medians), in {rounds} of every pipeline; "
        f"device `{env['device']}` ({env['device_name']}) with {env['torch_threads']} torch threads on "
        f"{env['cpu_count']} CPUs, torch {env['torch_version']}. The load average was "
        f"{s['load_average_start']:.2f} at the start and {s['load_average_end']:.2f} at the end."
    )
    quick = (
        " Made in quick mode (`--quick`): a few batches per epoch, so the timings are a smoke test, "
        "not a measurement."
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
        row = {"pipeline": f"`{name}`", "what it runs": figures.get("description", "")}
        row.update({header: figure(figures.get(key)) for header, key in PIPELINE_FIGURES.items()})
        row["optimizer"] = figures.get("optimizer", NO_VALUE)
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
                "ratio": f"`{name}`",
                "what it divides": RATIO_MEANINGS.get(name, NO_VALUE),
                "value": ratio_text(value),
                "target": target_text(target["target"]) if target else NO_VALUE,
                "result": verdict(target),
            }
        )
    return pd.DataFrame(rows)


def chart_frame(pipelines: dict[str, dict]) -> pd.DataFrame:
    """The chart's table: ``pipeline``, ``seconds_per_60000_images``, ``description``, in the run's order."""
    return pd.DataFrame(
        {
            "pipeline": list(pipelines),
            "seconds_per_60000_images": [figures["seconds_per_60000_images"] for figures in pipelines.values()],
            "description": [figures.get("description", "") for figures in pipelines.values()],
        }
    )


# --- findings ------------------------------------------------------------------------------


def _target_items(names: list[str], ratios: dict[str, float], targets: dict[str, dict]) -> str:
    """``a (value, target ≥ 5)``, ``a (...) and b (...)``, ``a (...), b (...) and c (...)``."""
    items = [f"`{name}` ({ratio_text(ratios.get(name))}, target {target_text(targets[name]['target'])})" for name in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def targets_sentence(ratios: dict[str, float], targets: dict[str, dict]) -> str:
    """How many targets the run met, each with its value and target."""
    if not targets:
        return "The run records no targets for its ratios."
    met = [name for name, target in targets.items() if target["met"]]
    missed = [name for name, target in targets.items() if not target["met"]]
    if not missed:
        return f"The run met all {len(targets)} of its targets: {_target_items(met, ratios, targets)}."
    if not met:
        return f"The run met none of its {len(targets)} targets: it missed {_target_items(missed, ratios, targets)}."
    return (
        f"The run met {len(met)} of its {len(targets)} targets, {_target_items(met, ratios, targets)}, "
        f"and missed {_target_items(missed, ratios, targets)}."
    )


def speed_sentence(pipelines: dict[str, dict]) -> str:
    """The fastest and slowest pipeline per 60,000 images."""
    seconds = {name: figures["seconds_per_60000_images"] for name, figures in pipelines.items()}
    fastest, slowest = min(seconds, key=seconds.get), max(seconds, key=seconds.get)
    return (
        f"Per 60,000 training images the fastest pipeline is `{fastest}` ({figure(seconds[fastest])} s), "
        f"the slowest `{slowest}` ({figure(seconds[slowest])} s)."
    )


def peak_sentence(results: dict) -> str:
    """The fp32 matrix product's rate, and the floor's and anncore's training FLOP rates as fractions of it.

    Empty for a benchmark run made before the peak was measured (its ``benchmark.json`` has no ``peak``).
    """
    peak, flops, pipelines = results.get("peak"), results.get("flops"), results["pipelines"]
    if not peak or not flops:
        return ""
    n = f"{peak['size']:,}"
    loads = ", ".join(f"{load:.2f}" for load in peak["load_average_each"])
    rates = " and ".join(
        f"`{name}` at {figure(pipelines[name]['training_gflops'])} GFLOPS "
        f"({ratio_text(pipelines[name]['fraction_of_peak'])} of the peak)"
        for name in ("floor", "anncore")
    )
    return (
        f"An fp32 matrix product of {n} × {n} by {n} × {n} ran at {figure(peak['gflops'])} GFLOPS, the median of "
        f"{peak['products_timed']} products timed before the rounds (best {figure(peak['best_gflops'])}; load "
        f"average {loads} when timed). Counting 6 × the {flops['forward_multiply_adds_per_sample']:,} forward "
        f"multiply-adds of one sample ({figure(flops['training_flops_per_sample'] / 1e6)} MFLOP), training ran "
        f"{rates}."
    )


def profile_sentence(results: dict) -> str:
    """Where a profiled anncore epoch spent its time, by kind of work, largest first (empty without a profile).

    ``benchmark.json``'s ``profile`` is there when the benchmark ran with ``--profile``.
    """
    profiled, peak = results.get("profile"), results.get("peak")
    if not profiled:
        return ""
    shares = sorted(profiled["fractions"].items(), key=lambda item: item[1], reverse=True)
    parts = ", ".join(f"{kind} {share:.1%}" for kind, share in shares)
    text = (
        f"Under `torch.profiler`, one anncore epoch of {profiled['samples']:,} samples "
        f"({figure(profiled['wall_seconds'])} s, the profiler's cost included) went to: {parts}."
    )
    if profiled.get("matmul_gflops") is not None:
        rate = f"{figure(profiled['matmul_gflops'])} GFLOPS"
        of_peak = f", {ratio_text(profiled['matmul_gflops'] / peak['gflops'])} of the peak" if peak else ""
        text += f" The matrix products themselves ran at {rate}{of_peak}, counting the FLOPs they execute."
    return text


def notebook_sentence(ratios: dict[str, float]) -> str:
    """anncore's speed-up over the notebook's pipeline, without a verdict (it moves with the machine)."""
    if "notebook_over_anncore" not in ratios:
        return ""
    return (
        f"The anncore trainer runs an epoch $S = {ratio_text(ratios['notebook_over_anncore'])}$ times as fast as "
        "the notebook's pipeline; $S$ has no target, since the notebook's single-threaded per-sample transforms "
        "speed up with the machine's state more than matrix products do."
    )


# --- chunks --------------------------------------------------------------------------------


@SECTION.output
def pipeline_table(store: Store, run: StoredRun) -> Markdown:
    """Per pipeline: what it runs, seconds per epoch, throughput, evaluation time, memory, optimizer."""
    results = load_results(store, run)
    return SECTION.table(pipeline_frame(results["pipelines"]), "Benchmark: one row per training pipeline", [run])


@SECTION.output
def ratio_table(store: Store, run: StoredRun) -> Markdown:
    """Every ratio the run measured, against its target where it has one."""
    results = load_results(store, run)
    frame = ratio_frame(results["ratios"], results.get("targets", {}))
    return SECTION.table(frame, "Benchmark: ratios and their targets", [run])


@SECTION.output
def pipeline_chart(store: Store, run: StoredRun) -> Outputs:
    """Seconds per 60,000 training images, one bar per pipeline."""
    chart = pipeline_seconds(chart_frame(load_results(store, run)["pipelines"]))
    return SECTION.chart(chart, "performance-pipelines", "Benchmark: seconds per 60,000 images per pipeline", [run])


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
    return Markdown(" ".join(sentence for sentence in sentences if sentence) + " " + SECTION.source_line([run]) + "\n")
