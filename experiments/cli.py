"""The command line: ``list``, ``run NAME... | all`` and ``rerun RUN_ID``, parsed strictly.

Every option value goes through a small ``type=`` function that either returns a clean value
or raises ``argparse.ArgumentTypeError`` naming the value and what is accepted; nothing a user
types is ever evaluated. Parse errors print one ``error: ...`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, TextIO

from experiments.arguments import OneLineArgumentParser, integer, ranged_float, ranged_int
from experiments.search import batching
from experiments.search import plan as search_plan
from experiments.search import storage as search_storage
from experiments.settings import CustomOptions, Invocation, RunSettings, SweepOptions
from experiments.studies import DESCRIPTIONS, EXPERIMENT_NAMES
from experiments.tracking import liveness

DEVICES = ("auto", "cpu", "cuda")
MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1
MAX_LAYER_WIDTH = 100_000
MAX_TRIALS = 100_000
MAX_WORKERS = 64

# The options' types: each returns a clean value or raises ArgumentTypeError naming what is accepted.
positive_int = ranged_int(1, MAX_EPOCHS, f"accepted: an integer from 1 to {MAX_EPOCHS}")
trial_count = ranged_int(1, MAX_TRIALS, f"accepted: a number of trials from 1 to {MAX_TRIALS}")
worker_count = ranged_int(1, MAX_WORKERS, f"accepted: a number of worker processes from 1 to {MAX_WORKERS}")
batch_trials = ranged_int(1, batching.MAX_TRIALS_PER_BATCH,
                          f"accepted: a number of trials trained together from 1 to {batching.MAX_TRIALS_PER_BATCH}")
dropout_rate = ranged_float("accepted: a dropout probability p with 0 <= p < 1", at_least=0.0, below=1.0)
learning_rate = ranged_float("accepted: a learning rate greater than 0, such as 0.001", above=0.0)
accuracy_fraction = ranged_float("accepted: a fraction a with 0 < a <= 1, such as 0.8", above=0.0, at_most=1.0)
timeout_seconds = ranged_float("accepted: a number of seconds greater than 0, such as 600", above=0.0)


def _int_list(text: str, what: str, low: int, high: int) -> tuple[int, ...]:
    accepted = f"accepted: {what}, comma-separated integers from {low} to {high}"
    parts = text.split(",")
    if any(part.strip() == "" for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item; {accepted}")
    values = tuple(integer(part, accepted) for part in parts)
    bad = [v for v in values if not low <= v <= high]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: {bad[0]} is out of range; {accepted}")
    return values


def seed_list(text: str) -> tuple[int, ...]:
    """Distinct non-negative integer seeds such as ``0,1,2``."""
    seeds = _int_list(text, "seeds such as 0,1,2", 0, MAX_SEED)
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a seed; accepted: distinct seeds such as 0,1,2")
    return seeds


def hidden_sizes(text: str) -> tuple[int, ...]:
    """Hidden layer widths such as ``512,256``."""
    return _int_list(text, "hidden layer widths such as 512,256", 1, MAX_LAYER_WIDTH)


def hidden_activation(text: str) -> str:
    """An elementwise activation name from ``anncore.activations`` (softmax is not a hidden activation)."""
    from anncore.activations import ACTIVATION_NAMES  # imports torch: only when the option is used

    accepted = [name for name in ACTIVATION_NAMES if name != "softmax"]
    if text not in accepted:
        raise argparse.ArgumentTypeError(f"unknown activation {text!r}; accepted: {', '.join(accepted)}")
    return text


def study_name(text: str) -> str:
    """An Optuna study name: letters, digits, ``.``, ``_`` and ``-``."""
    return _checked(search_storage.check_study_name, text)


def storage_url(text: str) -> str:
    """An Optuna storage URL with a supported scheme (the database is contacted later)."""
    return _checked(search_storage.check_storage_url, text)


def _checked(check: Callable[[str], str], text: str) -> str:
    try:
        return check(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def experiment_name(text: str) -> str:
    """An experiment name or ``all``."""
    if text != "all" and text not in EXPERIMENT_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown experiment {text!r}; accepted: {', '.join(EXPERIMENT_NAMES)}, all"
        )
    return text


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    defaults = Invocation()
    parser.add_argument("--epochs", type=positive_int, help="epochs for every training experiment (default: the notebook's)")
    parser.add_argument("--seeds", type=seed_list, help="comma-separated seeds, e.g. 0,1,2: studies run each arm once per seed, "
                        f"single runs use the first (default: {','.join(map(str, defaults.seeds))})")
    parser.add_argument("--device", choices=DEVICES, help=f"where to train (default: {defaults.device}, CUDA when available)")
    parser.add_argument("--data-dir", type=Path, help="folder holding FashionMNIST/raw (default: ./data, downloaded when missing)")
    parser.add_argument("--tracking-uri", help="MLflow store: sqlite:///path/mlflow.db or http(s)://host:port "
                        "(default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)")
    parser.add_argument("--quick", action="store_true", default=None, help="smoke test: a slice of the data, a few batches, few epochs")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=True, help="hide progress bars")
    defaults = RunSettings()
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", default=defaults.cuda_graphs,
                        help="on CUDA, train every batch eagerly (default: full batches replay one captured CUDA graph)")
    parser.add_argument("--no-system-metrics", dest="system_metrics", action="store_false", default=defaults.system_metrics,
                        help="do not log MLflow's system metrics (CPU, memory, GPU) with each run")


def _add_custom_options(custom: argparse._ArgumentGroup) -> None:
    defaults = CustomOptions()
    custom.add_argument("--hidden-sizes", type=hidden_sizes,
                        help=f"hidden layer widths (default {','.join(map(str, defaults.hidden_sizes))})")
    custom.add_argument("--dropout", type=dropout_rate, help=f"dropout probability in [0, 1) (default {defaults.dropout})")
    custom.add_argument("--lr", type=learning_rate, help=f"Adam learning rate (default {defaults.learning_rate})")
    custom.add_argument("--activation", type=hidden_activation,
                        help=f"sigmoid, tanh, relu, leaky_relu, elu or identity (default {defaults.activation})")


def build_parser() -> OneLineArgumentParser:
    """Build the ``python -m experiments`` argument parser."""
    parser = OneLineArgumentParser(
        prog="python -m experiments",
        description="Run the course notebook's studies and track them in MLflow.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,run,rerun,cleanup}")

    commands.add_parser("list", help="list the experiments")

    run = commands.add_parser("run", help="run experiments: NAME... or all",
                              epilog="experiments: " + ", ".join(EXPERIMENT_NAMES))
    run.add_argument("names", nargs="+", type=experiment_name, metavar="NAME", help="experiment names, or all")
    _add_common_options(run)
    _add_custom_options(run.add_argument_group("custom experiment"))
    study = run.add_argument_group("activation_study")
    study.add_argument("--target-accuracy", type=accuracy_fraction,
                       help=f"test accuracy to count epochs to (default {RunSettings.target_accuracy})")
    sweep = run.add_argument_group("sweep (architecture search)")
    sweep.add_argument("--trials", type=trial_count, help="trials this invocation adds to the study "
                       f"(default {search_plan.DEFAULT_TRIALS}, {search_plan.QUICK_TRIALS} with --quick)")
    sweep.add_argument("--timeout", type=timeout_seconds, help="start no trial after this many seconds "
                       f"(default {search_plan.DEFAULT_TIMEOUT_S:g} when --trials is not given either, else none)")
    sweep.add_argument("--study-name", type=study_name, help="Optuna study to create or continue "
                       f"(default {search_plan.DEFAULT_STUDY_NAME}, {search_plan.DEFAULT_STUDY_NAME}-quick with --quick)")
    sweep.add_argument("--storage", type=storage_url, help="Optuna storage: sqlite:///path/optuna.db or "
                       "postgresql+psycopg://user:password@host:port/db (default: optuna.db next to an SQLite MLflow store; with a tracking server, ~/.local/share/anncore/optuna-<host>-<port>.db)")
    sweep.add_argument("--workers", type=worker_count,
                       help=f"local worker processes sharing the study (default {SweepOptions.workers})")
    sweep.add_argument("--trials-per-batch", type=batch_trials, metavar="K",
                       help="trials of one shape trained together as one stacked model, each still its own trial and run "
                       f"(default: 1 on the CPU; on CUDA {batching.CUDA_DEFAULT_TRIALS_PER_BATCH}, or fewer if they do not "
                       f"fit in half the free device memory)")

    rerun = commands.add_parser("rerun", help="a new run with the logged parameters of an old one",
                                description="A new run with the invocation and options an old run logged; "
                                "the options given here replace the logged ones (the defaults below are run's).")
    rerun.add_argument("run_id", metavar="RUN_ID", help="id of the run to rerun (see the MLflow UI)")
    _add_common_options(rerun)

    cleanup = commands.add_parser("cleanup", help="end KILLED the runs whose process died (left RUNNING)")
    cleanup.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db)")
    cleanup.add_argument("--stale-after", type=liveness.stale_after_seconds, default=liveness.DEFAULT_STALE_AFTER_S,
                         metavar="SECONDS", help="runs of other hosts count as dead after this long without a heartbeat "
                         f"(default {liveness.DEFAULT_STALE_AFTER_S:g})")
    cleanup.add_argument("--this-host-only", action="store_true", help="only runs of this host (checked by pid)")
    cleanup.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``); exits with status 2 and one line on bad input."""
    args = build_parser().parse_args(argv)
    if args.command == "run" and "all" in args.names and len(args.names) > 1:
        build_parser().error(f"'all' cannot be combined with other names; got {' '.join(args.names)}")
    return args


def print_experiment_list(stream: TextIO | None = None) -> None:
    """Print every experiment with its one-line description (to stdout by default)."""
    stream = stream or sys.stdout
    width = max(map(len, EXPERIMENT_NAMES))
    for name, description in DESCRIPTIONS.items():
        print(f"{name:<{width}}  {description}", file=stream)
