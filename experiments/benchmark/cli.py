"""``python -m experiments.benchmark``: time the notebook's pipeline against anncore's, in one process.

Four pipelines train the baseline model (784-512-256-128-10, dropout 0.3, Adam 1e-3, batch 128)
on the same images (see ``experiments.benchmark.pipelines``): the notebook's, a bare
forward/backward/step floor, anncore's trainer, and anncore's trainer with the ``baseline``
experiment's MLflow logging. Each run has ``--epochs`` epochs, the first a warm-up. Runs go in
rounds, the pipeline order reversed every other round, so none always runs first or last.

Figures per pipeline: seconds per epoch (median over the epochs after the warm-ups, training
pass only), samples per second, evaluation seconds per epoch, run seconds (median over
rounds: the whole run with evaluation and logging), peak memory added (see
``experiments.benchmark.memory``), and the training FLOP rate: 6 × the forward multiply-adds per
sample (566,528 for the baseline model, so 3.40 MFLOP per sample) × samples per second, also as a
fraction of the machine's peak. The peak is the median rate of an fp32 matrix product
(2048 × 2048 × 2048 on a CPU) timed before every round on the same device and thread count
(see ``experiments.benchmark.peak``), and microseconds per optimizer step. On CUDA a fifth
pipeline, the captured floor (the floor's step as one CUDA graph), is timed too: at batch 128
a GPU is launch-bound, so anncore / captured floor, not the fraction of the FLOP peak, says how
close anncore is to what the device can do (target <= 1.3). Ratios: notebook / anncore and anncore / floor of seconds
per epoch, and the floor's and anncore's fractions of the peak. The logging overhead, anncore_mlflow / anncore, is 1 + (logging seconds per run) /
(anncore's run seconds), where the logging seconds are the extra time the MLflow pipeline spends
outside its epochs' training and evaluation (run seconds minus both), paired with the anncore
run of the same round, median over rounds. Logging only happens there (the trainer times an
epoch before it calls the logger), and leaving the epochs out keeps their run-to-run noise,
several per cent on a shared machine, out of a figure of a few per cent. The plain ratio of
the two pipelines' median run seconds is reported too, as
``anncore_mlflow_over_anncore_whole_runs``. Targets: anncore / floor <= 1.05, anncore's fraction
of the peak >= 0.70, the logging overhead <= 1.05; notebook / anncore is reported without one.

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
import tempfile
from pathlib import Path

from experiments.benchmark.figures import (
    environment, logging_seconds_per_run, measure, pipeline_figures, ratios, targets_met,
)
from experiments.benchmark.pipelines import BenchmarkSetup
from experiments.benchmark.results import log_results, print_report
from experiments.arguments import OneLineArgumentParser, command_main, ranged_int
from experiments.cli import DEVICES
from experiments.settings import UserInputError

DEFAULT_EPOCHS = 5  # the notebook's; the first is the warm-up
DEFAULT_ROUNDS = 3
QUICK_EPOCHS = 2
QUICK_PEAK_REPEATS = 2  # fp32 products timed per round with --quick (else peak.MATMUL_REPEATS)


def _int_at_least(low: int, what: str):
    return ranged_int(low, None, f"accepted: {what}, an integer >= {low}")


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
    parser.add_argument("--profile", action="store_true",
                        help="also profile one anncore epoch (torch.profiler, after a warm-up, outside the timed runs) "
                        "and report where its time goes")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=True,
                        help="hide the anncore pipelines' progress bars (shown by default, as in the experiments)")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", default=True,
                        help="on CUDA, the anncore pipelines train eagerly (default: through the captured step)")
    parser.add_argument("--no-system-metrics", dest="system_metrics", action="store_false", default=True,
                        help="the MLflow pipeline's runs log no system metrics (logged by default, as in the experiments)")
    return parser



def _store_uri(args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    """The store the MLflow pipeline (and --log-mlflow) uses: given, default, or a temporary one."""
    from experiments.tracking import store

    if args.log_mlflow or args.tracking_uri:
        return store.resolve_tracking_uri(args.tracking_uri)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="anncore-benchmark-"))
    return f"sqlite:///{Path(folder) / 'mlflow.db'}"


def _setup_from_args(args: argparse.Namespace) -> tuple[BenchmarkSetup, dict[str, object]]:
    """Check the device and data; return the pipelines' setup and the settings to record."""
    import torch

    from anncore.trainer import resolve_device
    from experiments.settings import QUICK_MAX_BATCHES, QUICK_TEST_SIZE, QUICK_TRAIN_SIZE

    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise UserInputError(f"--device {args.device}: {error}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir or "data").expanduser().resolve()
    sizes, sha256 = _dataset_sizes(data_dir, download=args.data_dir is None)
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
        cuda_graphs=args.cuda_graphs,
        system_metrics=args.system_metrics,
    )
    return setup, _recorded_settings(args, setup, sizes, rounds)


def _dataset_sizes(data_dir: Path, download: bool) -> tuple[dict[bool, int], str]:
    """The sizes of the train (True) and test (False) splits in ``data_dir``, and its checksum."""
    from anncore.data import CorruptDatasetError, DatasetNotFoundError, dataset_checksum, load_fashion_mnist

    try:
        sizes = {train: len(load_fashion_mnist(data_dir, train=train, download=download)) for train in (True, False)}
        return sizes, dataset_checksum(data_dir)
    except (DatasetNotFoundError, CorruptDatasetError) as error:
        raise UserInputError(str(error)) from None


def _recorded_settings(args: argparse.Namespace, setup: BenchmarkSetup, sizes: dict[bool, int], rounds: int) -> dict[str, object]:
    """What the benchmark ran with, for benchmark.json and the MLflow params."""
    from anncore.models import architecture_string
    from experiments.benchmark.pipelines import BATCH_SIZE, LEARNING_RATE
    from experiments.studies.baseline import DROPOUT, HIDDEN_SIZES

    data_dir, sha256, train_size, test_size, epochs = setup.data_dir, setup.sha256, setup.train_size, setup.test_size, setup.epochs
    mode = ("as loaded" if train_size == sizes[True]
            else "first N of the split" if train_size < sizes[True] else "split repeated cyclically up to N")
    return {
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
        "cuda_graphs": bool(args.cuda_graphs),
        "system_metrics": bool(args.system_metrics),
        "seed": args.seed,
    }


def flop_counts() -> dict[str, object]:
    """The baseline model's FLOPs per training sample (see ``experiments.benchmark.peak``)."""
    from anncore.models import FashionMNISTClassifier
    from experiments.benchmark import peak
    from experiments.studies.baseline import DROPOUT, HIDDEN_SIZES

    model = FashionMNISTClassifier(HIDDEN_SIZES, dropout_rate=DROPOUT)
    return {
        "forward_multiply_adds_per_sample": peak.forward_multiply_adds(model),
        "training_flops_per_sample": peak.training_flops_per_sample(model),
        "executed_matmul_flops_per_sample": peak.executed_matmul_flops_per_sample(model),
        "convention": "training FLOPs = 6 x forward multiply-adds per sample (2 forward, 4 backward)",
    }


def _profile(setup: BenchmarkSetup, flops: dict[str, object]) -> dict[str, object]:
    """One anncore epoch under torch.profiler (``--profile``), outside the timed runs."""
    from experiments.benchmark.profile import profile_anncore_epoch

    print("profile: one anncore epoch under torch.profiler", flush=True)
    profiled = profile_anncore_epoch(setup, flops["executed_matmul_flops_per_sample"])
    profiled["load_average"] = os.getloadavg()[0]
    return profiled


def _stacked(setup: BenchmarkSetup, quick: bool) -> dict[str, object]:
    """Stacked training's model-epochs per second against one at a time (CUDA only)."""
    from experiments.benchmark.stacked import QUICK_STACK_SIZES, STACK_SIZES, measure_stacked

    print("stacked: one model alone, then stacks of K", flush=True)
    return measure_stacked(setup, QUICK_STACK_SIZES if quick else STACK_SIZES)


def run_benchmark(args: argparse.Namespace) -> dict[str, object]:
    """Measure every pipeline and return the results (also written/logged as asked)."""
    import torch

    from experiments.benchmark import peak
    from experiments.benchmark.pipelines import benchmark_settings
    from experiments.tracking import runs, store

    setup, settings = _setup_from_args(args)
    flops = flop_counts()
    peak_repeats = QUICK_PEAK_REPEATS if args.quick else peak.MATMUL_REPEATS
    with contextlib.ExitStack() as stack:
        uri = _store_uri(args, stack)
        stack.enter_context(store.restored_tracking_uri())
        store.connect(uri)
        params = {key: ("none" if value is None else value) for key, value in settings.items() if key != "data_dir"}
        with runs.tracked_run(benchmark_settings(setup), "benchmark", role="parent", run_name="benchmark",
                              params={**params, "torch_threads": torch.get_num_threads()}) as run:
            settings["load_average_start"] = os.getloadavg()[0]
            measurements, timings = measure(setup, settings["rounds"], peak_repeats)
            settings["load_average_end"] = os.getloadavg()[0]
            profiled = _profile(setup, flops) if args.profile else None
            stacked = _stacked(setup, args.quick) if setup.device.type == "cuda" else None
            peak_result = peak.peak_figures(timings.size, timings.seconds_each, timings.load_average_each)
            figures = {
                name: pipeline_figures(name, measurements[name], flops["training_flops_per_sample"], peak_result["gflops"])
                for name in measurements
            }
            logging_seconds = logging_seconds_per_run(figures)
            measured = ratios(figures, logging_seconds)
            results = {
                "pipelines": figures,
                "ratios": measured,
                "targets": targets_met(measured),
                "logging_seconds_per_run": logging_seconds,
                "peak": peak_result,
                "flops": flops,
                "profile": profiled,
                **({"stacked": stacked} if stacked else {}),
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
    return command_main(build_parser().parse_args, _run_and_report, argv)


def _run_and_report(args: argparse.Namespace) -> int:
    results = run_benchmark(args)
    print_report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
        print(f"figures written to {args.json}")
    if results["mlflow"]["logged"]:
        print(f"logged to MLflow experiment anncore-benchmark, run {results['mlflow']['run_id']}")
    return 0
