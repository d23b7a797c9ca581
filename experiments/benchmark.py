"""``python -m experiments.benchmark``: time the notebook's pipeline against anncore's, in one process.

Four pipelines train the baseline model (784-512-256-128-10, dropout 0.3, Adam 1e-3, batch 128)
on the same images (see ``experiments.benchmark_pipelines``): the notebook's, a bare
forward/backward/step floor, anncore's trainer, and anncore's trainer with the ``baseline``
experiment's MLflow logging. Each run has ``--epochs`` epochs, the first a warm-up. Runs go in
rounds, the pipeline order reversed every other round, so none always runs first or last.

Figures per pipeline: seconds per epoch (median over the epochs after the warm-ups, training
pass only), samples per second, evaluation seconds per epoch, run seconds (median over
rounds: the whole run with evaluation and logging) and peak memory added (see
``experiments.benchmark_memory``). Ratios: notebook / anncore and anncore / floor of seconds
per epoch. The logging overhead, anncore_mlflow / anncore, is 1 + (logging seconds per run) /
(anncore's run seconds), where the logging seconds are the extra time the MLflow pipeline spends
outside its epochs' training and evaluation (run seconds minus both), paired with the anncore
run of the same round, median over rounds. Logging only happens there (the trainer times an
epoch before it calls the logger), and leaving the epochs out keeps their run-to-run noise,
several per cent on a shared machine, out of a figure of a few per cent. The plain ratio of
the two pipelines' median run seconds is reported too, as
``anncore_mlflow_over_anncore_whole_runs``.

Examples::

    python -m experiments.benchmark --data-dir ../shared/data
    python -m experiments.benchmark --data-dir ../shared/data --train-size 60000 --json benchmark.json
    python -m experiments.benchmark --data-dir ../shared/data --log-mlflow   # into ./mlruns
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from experiments.benchmark_pipelines import DESCRIPTIONS, PIPELINES, BenchmarkSetup, PipelineRun
from experiments.cli import DEVICES, OneLineArgumentParser, _int as parse_int
from experiments.errors import UserInputError

DEFAULT_EPOCHS = 5  # the notebook's; the first is the warm-up
DEFAULT_ROUNDS = 3
QUICK_EPOCHS = 2
FULL_TRAIN_SIZE = 60_000  # FashionMNIST's training split, for the "per 60,000 images" figures
TARGETS: dict[str, tuple[str, float]] = {
    "notebook_over_anncore": (">=", 5.0),
    "anncore_over_floor": ("<=", 1.2),
    "anncore_mlflow_over_anncore": ("<=", 1.05),
}


def _int_at_least(low: int, what: str):
    def parse(text: str) -> int:
        accepted = f"accepted: {what}, an integer >= {low}"
        value = parse_int(text, accepted)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is too small; {accepted}")
        return value

    return parse


def build_parser() -> OneLineArgumentParser:
    """The benchmark's argument parser."""
    parser = OneLineArgumentParser(
        prog="python -m experiments.benchmark",
        description="Time the notebook's training pipeline, a bare floor, anncore's trainer and "
        "anncore's trainer with MLflow logging, on the same data in one process.",
    )
    parser.add_argument("--data-dir", type=Path, help="folder holding FashionMNIST/raw (default: ./data, downloaded when missing)")
    parser.add_argument("--epochs", type=_int_at_least(2, "epochs per run, the first a warm-up"),
                        help=f"epochs per run, the first a warm-up (default {DEFAULT_EPOCHS}; {QUICK_EPOCHS} with --quick)")
    parser.add_argument("--rounds", type=_int_at_least(1, "rounds of runs"),
                        help=f"runs of every pipeline, order reversed each round (default {DEFAULT_ROUNDS}; 1 with --quick)")
    parser.add_argument("--train-size", type=_int_at_least(1, "training images"),
                        help="training images: fewer takes the first N, more repeats the split up to N "
                        "(e.g. 60000 to emulate the full FashionMNIST); default: the split as it is")
    parser.add_argument("--test-size", type=_int_at_least(1, "test images"),
                        help="test images, the same way (default: the split as it is)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train (default: auto, CUDA when available)")
    parser.add_argument("--threads", type=_int_at_least(1, "CPU threads"), help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--seed", type=_int_at_least(0, "a seed"), default=0, help="seed of every run (default 0)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--log-mlflow", action="store_true",
                        help="log the figures to MLflow experiment anncore-benchmark (benchmark.json and metrics); "
                        "the MLflow pipeline's runs are its children")
    parser.add_argument("--tracking-uri", help="MLflow store for --log-mlflow (implies it): sqlite:///path/mlflow.db "
                        "or http(s)://host:port (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db); "
                        "without either, the MLflow pipeline logs into a temporary store")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: the experiments' --quick slices and batches, 2 epochs, 1 round")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=True,
                        help="hide the anncore pipelines' progress bars (shown by default, as in the experiments)")
    return parser


@dataclass
class Measurement:
    """One run of one pipeline and the peak memory it added."""

    run: PipelineRun
    peak_memory_mib: float
    peak_rss_mib: float
    memory_method: str


def measure(setup: BenchmarkSetup, rounds: int) -> dict[str, list[Measurement]]:
    """Run every pipeline ``rounds`` times, alternating the order, each under :class:`PeakMemory`."""
    from experiments.benchmark_memory import PeakMemory
    from experiments.benchmark_pipelines import RUNNERS

    measurements: dict[str, list[Measurement]] = {name: [] for name in PIPELINES}
    for round_index in range(rounds):
        order = PIPELINES if round_index % 2 == 0 else PIPELINES[::-1]
        for name in order:
            print(f"round {round_index + 1}/{rounds}: {name}", flush=True)
            with PeakMemory(setup.device) as memory:
                run = RUNNERS[name](setup)
            measurements[name].append(Measurement(run, memory.added_mib, memory.peak_mib, memory.method))
    return measurements


def _median_after_warmup(series: list[list[float]]) -> float | None:
    measured = [value for values in series for value in values[1:]]
    return statistics.median(measured) if measured else None


def pipeline_figures(name: str, measurements: list[Measurement]) -> dict[str, object]:
    """Pipeline ``name``'s figures from its runs (see the module docstring)."""
    runs = [m.run for m in measurements]
    seconds = _median_after_warmup([run.epoch_seconds for run in runs])
    outside = [outside_epochs_seconds(run) for run in runs]
    samples = runs[0].samples_per_epoch
    return {
        "seconds_per_epoch": seconds,
        "samples_per_sec": samples / seconds,
        "samples_per_epoch": samples,
        "seconds_per_60000_images": FULL_TRAIN_SIZE / (samples / seconds),
        "eval_seconds_per_epoch": _median_after_warmup([run.eval_seconds for run in runs]),
        "run_seconds": statistics.median(run.run_seconds for run in runs),
        "peak_memory_mib": max(m.peak_memory_mib for m in measurements),
        "peak_rss_mib": max(m.peak_rss_mib for m in measurements),
        "peak_memory_method": measurements[0].memory_method,
        "optimizer": runs[0].optimizer,
        "description": DESCRIPTIONS[name],
        "outside_epochs_seconds": statistics.median(outside),
        "epoch_seconds": [run.epoch_seconds for run in runs],
        "eval_seconds": [run.eval_seconds for run in runs],
        "run_seconds_each": [run.run_seconds for run in runs],
        "outside_epochs_seconds_each": outside,
    }


def outside_epochs_seconds(run: PipelineRun) -> float:
    """The part of a run spent outside its epochs' training passes and evaluations.

    Set-up, the final evaluation and, for the MLflow pipeline, all its logging.
    """
    return run.run_seconds - sum(run.epoch_seconds) - sum(run.eval_seconds)


def logging_seconds_per_run(figures: dict[str, dict[str, object]]) -> float:
    """What MLflow adds to one run: the MLflow pipeline's time outside its epochs minus anncore's.

    Runs are paired by round (both lists are in round order); the median over rounds.
    """
    pairs = zip(figures["anncore_mlflow"]["outside_epochs_seconds_each"], figures["anncore"]["outside_epochs_seconds_each"])
    return statistics.median(logged - plain for logged, plain in pairs)


def ratios(figures: dict[str, dict[str, object]], logging_seconds: float) -> dict[str, float]:
    """The three target ratios, and two more without a target (see the module docstring).

    notebook / anncore and anncore / floor divide seconds per epoch (training pass);
    anncore_mlflow / anncore is 1 + ``logging_seconds`` (:func:`logging_seconds_per_run`) / anncore's run seconds;
    ``anncore_mlflow_over_anncore_whole_runs`` divides the two pipelines' median run seconds;
    ``notebook_over_anncore_with_eval`` divides training pass plus evaluation per epoch, which
    is what one epoch of the notebook's ``train_model`` does.
    """
    spe = {name: figures[name]["seconds_per_epoch"] for name in PIPELINES}
    with_eval = {name: spe[name] + figures[name]["eval_seconds_per_epoch"] for name in ("notebook", "anncore")}
    run_seconds = {name: figures[name]["run_seconds"] for name in ("anncore", "anncore_mlflow")}
    return {
        "notebook_over_anncore": spe["notebook"] / spe["anncore"],
        "anncore_over_floor": spe["anncore"] / spe["floor"],
        "anncore_mlflow_over_anncore": 1 + logging_seconds / run_seconds["anncore"],
        "anncore_mlflow_over_anncore_whole_runs": run_seconds["anncore_mlflow"] / run_seconds["anncore"],
        "notebook_over_anncore_with_eval": with_eval["notebook"] / with_eval["anncore"],
    }


def targets_met(measured: dict[str, float]) -> dict[str, dict[str, object]]:
    """Each ratio's target from the performance issue and whether this run met it."""
    met = {}
    for name, (relation, bound) in TARGETS.items():
        value = measured[name]
        met[name] = {"target": f"{relation} {bound:g}", "met": value >= bound if relation == ">=" else value <= bound}
    return met


def environment(device) -> dict[str, object]:
    """What the figures depend on: versions, threads, the device and the machine's load."""
    import mlflow
    import torch

    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "mlflow_version": mlflow.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
    }


def figures_table(figures: dict[str, dict[str, object]]):
    """A pandas table of the headline figures, one row per pipeline."""
    import pandas as pd

    rows = []
    for name in PIPELINES:
        f = figures[name]
        rows.append(
            {
                "pipeline": name,
                "s/epoch": f["seconds_per_epoch"],
                "samples/s": f["samples_per_sec"],
                "s per 60k": f["seconds_per_60000_images"],
                "eval s/epoch": f["eval_seconds_per_epoch"],
                "run s": f["run_seconds"],
                "peak MiB": f["peak_memory_mib"],
                "optimizer": f["optimizer"],
            }
        )
    return pd.DataFrame(rows)


def print_report(results: dict[str, object], stream=sys.stdout) -> None:
    """Print the figures table, the ratios against their targets, and the conditions."""
    import pandas as pd

    table = figures_table(results["pipelines"])
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"),
              file=stream)
    print("", file=stream)
    for name, value in results["ratios"].items():
        target = results["targets"].get(name)
        verdict = f"(target {target['target']}: {'met' if target['met'] else 'MISSED'})" if target else "(no target)"
        print(f"{name:<40} {value:6.3f}  {verdict}", file=stream)
    print(f"MLflow logging adds {results['logging_seconds_per_run']:.3f} s per run (its pipeline's time outside the "
          "epochs, minus anncore's; median over rounds)", file=stream)
    s, env = results["settings"], results["environment"]
    print(
        f"\n{s['train_size']} training images ({s['train_size_mode']}), {s['epochs']} epochs per run "
        f"(1 warm-up), {s['rounds']} round(s), batch {s['batch_size']}, {env['device']}, "
        f"{env['torch_threads']} torch threads; load average {s['load_average_start']:.2f} at the start, "
        f"{s['load_average_end']:.2f} at the end. Peak memory: {results['pipelines']['anncore']['peak_memory_method']}.",
        file=stream,
    )


def log_results(results: dict[str, object]) -> None:
    """Log the figures into the active (benchmark) run: metrics and ``benchmark.json``."""
    import mlflow

    from experiments import runs

    metrics = {}
    for name in PIPELINES:
        f = results["pipelines"][name]
        for key in ("seconds_per_epoch", "samples_per_sec", "peak_memory_mib", "run_seconds"):
            metrics[f"{name}/{key}"] = f[key]
    metrics.update(results["ratios"])
    metrics["logging_seconds_per_run"] = results["logging_seconds_per_run"]
    metrics["load_average_start"] = results["settings"]["load_average_start"]
    metrics["load_average_end"] = results["settings"]["load_average_end"]
    runs.log_metrics(metrics)
    mlflow.log_dict(results, "benchmark.json")


def _store_uri(args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    """The store the MLflow pipeline (and --log-mlflow) uses: given, default, or a temporary one."""
    from experiments import tracking

    if args.log_mlflow or args.tracking_uri:
        return tracking.resolve_tracking_uri(args.tracking_uri)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="anncore-benchmark-"))
    return f"sqlite:///{Path(folder) / 'mlflow.db'}"


def _setup_from_args(args: argparse.Namespace) -> tuple[BenchmarkSetup, dict[str, object]]:
    """Check the device and data; return the pipelines' setup and the settings to record."""
    import torch

    from anncore.data import CorruptDatasetError, DatasetNotFoundError, dataset_checksum, load_fashion_mnist
    from anncore.models import architecture_string
    from anncore.trainer import resolve_device
    from experiments.baseline import DROPOUT, HIDDEN_SIZES
    from experiments.benchmark_pipelines import BATCH_SIZE, LEARNING_RATE
    from experiments.settings import QUICK_MAX_BATCHES, QUICK_TEST_SIZE, QUICK_TRAIN_SIZE

    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise UserInputError(f"--device {args.device}: {error}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir or "data").expanduser().resolve()
    try:
        sizes = {
            train: len(load_fashion_mnist(data_dir, train=train, download=args.data_dir is None))
            for train in (True, False)
        }
        sha256 = dataset_checksum(data_dir)
    except (DatasetNotFoundError, CorruptDatasetError) as error:
        raise UserInputError(str(error)) from None
    train_size = args.train_size or (min(QUICK_TRAIN_SIZE, sizes[True]) if args.quick else sizes[True])
    test_size = args.test_size or (min(QUICK_TEST_SIZE, sizes[False]) if args.quick else sizes[False])
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
    rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS)
    setup = BenchmarkSetup(
        data_dir=data_dir,
        train_size=train_size,
        test_size=test_size,
        epochs=epochs,
        device=device,
        seed=args.seed,
        max_batches=QUICK_MAX_BATCHES if args.quick else None,
        progress=args.progress,
        sha256=sha256,
    )
    mode = ("as loaded" if train_size == sizes[True]
            else "first N of the split" if train_size < sizes[True] else "split repeated cyclically up to N")
    settings = {
        "data_dir": str(data_dir),
        "dataset_train_size": sizes[True],
        "dataset_test_size": sizes[False],
        "dataset_sha256": sha256,
        "train_size": train_size,
        "train_size_mode": mode,
        "test_size": test_size,
        "epochs": epochs,
        "warmup_epochs": 1,
        "rounds": rounds,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "architecture": architecture_string((28 * 28, *HIDDEN_SIZES, 10)),
        "dropout_rate": DROPOUT,
        "max_batches": setup.max_batches,
        "quick": bool(args.quick),
        "progress": bool(args.progress),
        "seed": args.seed,
    }
    return setup, settings


def run_benchmark(args: argparse.Namespace) -> dict[str, object]:
    """Measure every pipeline and return the results (also written/logged as asked)."""
    import torch

    from experiments import runs, tracking
    from experiments.benchmark_pipelines import benchmark_settings

    setup, settings = _setup_from_args(args)
    with contextlib.ExitStack() as stack:
        uri = _store_uri(args, stack)
        stack.enter_context(tracking.restored_tracking_uri())
        tracking.connect(uri)
        params = {key: ("none" if value is None else value) for key, value in settings.items() if key != "data_dir"}
        with runs.tracked_run(benchmark_settings(setup), "benchmark", role="parent", run_name="benchmark",
                              params={**params, "torch_threads": torch.get_num_threads()}) as run:
            settings["load_average_start"] = os.getloadavg()[0]
            measurements = measure(setup, settings["rounds"])
            settings["load_average_end"] = os.getloadavg()[0]
            figures = {name: pipeline_figures(name, measurements[name]) for name in PIPELINES}
            logging_seconds = logging_seconds_per_run(figures)
            measured = ratios(figures, logging_seconds)
            results = {
                "pipelines": figures,
                "ratios": measured,
                "targets": targets_met(measured),
                "logging_seconds_per_run": logging_seconds,
                "settings": settings,
                "environment": environment(setup.device),
                "mlflow": {"logged": bool(args.log_mlflow or args.tracking_uri),
                           "run_id": run.info.run_id if (args.log_mlflow or args.tracking_uri) else None},
            }
            if results["mlflow"]["logged"]:
                log_results(results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; return the exit status (2 for bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        results = run_benchmark(args)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
        print(f"figures written to {args.json}")
    if results["mlflow"]["logged"]:
        print(f"logged to MLflow experiment anncore-benchmark, run {results['mlflow']['run_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
