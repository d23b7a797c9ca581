"""The command line: ``list``, ``run NAME... | all`` and ``rerun RUN_ID``, parsed strictly.

Every option value goes through a small ``type=`` function that either returns a clean value
or raises ``argparse.ArgumentTypeError`` naming the value and what is accepted; nothing a user
types is ever evaluated. Parse errors print one ``error: ...`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import NoReturn

from experiments.studies import DESCRIPTIONS, EXPERIMENT_NAMES

DEVICES = ("auto", "cpu", "cuda")
MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1
MAX_LAYER_WIDTH = 100_000
MAX_TRIALS = 100_000
MAX_WORKERS = 64


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``error: ...`` line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; {what}") from None


def positive_int(text: str) -> int:
    """An integer in 1..``MAX_EPOCHS`` (epochs)."""
    accepted = f"accepted: an integer from 1 to {MAX_EPOCHS}"
    value = _int(text, accepted)
    if not 1 <= value <= MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
    return value


def _int_list(text: str, what: str, low: int, high: int) -> tuple[int, ...]:
    accepted = f"accepted: {what}, comma-separated integers from {low} to {high}"
    parts = text.split(",")
    if any(part.strip() == "" for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item; {accepted}")
    values = tuple(_int(part, accepted) for part in parts)
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


def _finite_float(text: str, accepted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; {accepted}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not finite; {accepted}")
    return value


def dropout_rate(text: str) -> float:
    """A dropout probability in [0, 1)."""
    accepted = "accepted: a dropout probability p with 0 <= p < 1"
    value = _finite_float(text, accepted)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
    return value


def learning_rate(text: str) -> float:
    """A learning rate: a finite number > 0."""
    accepted = "accepted: a learning rate greater than 0, such as 0.001"
    value = _finite_float(text, accepted)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive; {accepted}")
    return value


def accuracy_fraction(text: str) -> float:
    """A target accuracy in (0, 1]."""
    accepted = "accepted: a fraction a with 0 < a <= 1, such as 0.8"
    value = _finite_float(text, accepted)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
    return value


def hidden_activation(text: str) -> str:
    """An elementwise activation name from ``anncore.activations`` (softmax is not a hidden activation)."""
    from anncore.activations import ACTIVATION_NAMES  # imports torch: only when the option is used

    accepted = [name for name in ACTIVATION_NAMES if name != "softmax"]
    if text not in accepted:
        raise argparse.ArgumentTypeError(f"unknown activation {text!r}; accepted: {', '.join(accepted)}")
    return text


def trial_count(text: str) -> int:
    """A number of sweep trials: an integer in 1..``MAX_TRIALS``."""
    accepted = f"accepted: a number of trials from 1 to {MAX_TRIALS}"
    value = _int(text, accepted)
    if not 1 <= value <= MAX_TRIALS:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
    return value


def timeout_seconds(text: str) -> float:
    """A time budget in seconds: a finite number > 0."""
    accepted = "accepted: a number of seconds greater than 0, such as 600"
    value = _finite_float(text, accepted)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive; {accepted}")
    return value


def worker_count(text: str) -> int:
    """Local worker processes: an integer in 1..``MAX_WORKERS``."""
    accepted = f"accepted: a number of worker processes from 1 to {MAX_WORKERS}"
    value = _int(text, accepted)
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
    return value


def study_name(text: str) -> str:
    """An Optuna study name: letters, digits, ``.``, ``_`` and ``-``."""
    from experiments.tracking.optuna_storage import check_study_name

    return _checked(check_study_name, text)


def storage_url(text: str) -> str:
    """An Optuna storage URL with a supported scheme (the database is contacted later)."""
    from experiments.tracking.optuna_storage import check_storage_url

    return _checked(check_storage_url, text)


def _checked(check, text: str) -> str:
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
    parser.add_argument("--epochs", type=positive_int, help="epochs for every training experiment (default: the notebook's)")
    parser.add_argument("--seeds", type=seed_list, help="comma-separated seeds, e.g. 0,1,2: studies run each arm once per seed, "
                        "single runs use the first (default: 0)")
    parser.add_argument("--device", choices=DEVICES, help="where to train (default: auto, CUDA when available)")
    parser.add_argument("--data-dir", type=Path, help="folder holding FashionMNIST/raw (default: ./data, downloaded when missing)")
    parser.add_argument("--tracking-uri", help="MLflow store: sqlite:///path/mlflow.db or http(s)://host:port "
                        "(default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)")
    parser.add_argument("--quick", action="store_true", default=None, help="smoke test: a slice of the data, a few batches, few epochs")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=True, help="hide progress bars")


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
    custom = run.add_argument_group("custom experiment")
    custom.add_argument("--hidden-sizes", type=hidden_sizes, help="hidden layer widths, e.g. 512,256 (default)")
    custom.add_argument("--dropout", type=dropout_rate, help="dropout probability in [0, 1) (default 0.3)")
    custom.add_argument("--lr", type=learning_rate, help="Adam learning rate (default 0.001)")
    custom.add_argument("--activation", type=hidden_activation,
                        help="relu (default), sigmoid, tanh, leaky_relu, elu or identity")
    study = run.add_argument_group("activation_study")
    study.add_argument("--target-accuracy", type=accuracy_fraction, help="test accuracy to count epochs to (default 0.8)")
    sweep = run.add_argument_group("sweep (architecture search)")
    sweep.add_argument("--trials", type=trial_count, help="trials this invocation adds to the study "
                       "(default 12, 4 with --quick)")
    sweep.add_argument("--timeout", type=timeout_seconds, help="start no trial after this many seconds "
                       "(default 150 when --trials is not given either, else none)")
    sweep.add_argument("--study-name", type=study_name, help="Optuna study to create or continue "
                       "(default fashion-mnist, fashion-mnist-quick with --quick)")
    sweep.add_argument("--storage", type=storage_url, help="Optuna storage: sqlite:///path/optuna.db or "
                       "postgresql+psycopg://user:password@host:port/db (default: optuna.db next to an SQLite MLflow store; with a tracking server, ~/.local/share/anncore/optuna-<host>-<port>.db)")
    sweep.add_argument("--workers", type=worker_count, help="local worker processes sharing the study (default 1)")

    rerun = commands.add_parser("rerun", help="a new run with the logged parameters of an old one")
    rerun.add_argument("run_id", metavar="RUN_ID", help="id of the run to rerun (see the MLflow UI)")
    _add_common_options(rerun)

    from experiments.tracking.liveness import stale_after_seconds

    cleanup = commands.add_parser("cleanup", help="end KILLED the runs whose process died (left RUNNING)")
    cleanup.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db)")
    cleanup.add_argument("--stale-after", type=stale_after_seconds, default=900.0, metavar="SECONDS",
                         help="runs of other hosts count as dead after this long without a heartbeat (default 900)")
    cleanup.add_argument("--this-host-only", action="store_true", help="only runs of this host (checked by pid)")
    cleanup.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``); exits with status 2 and one line on bad input."""
    args = build_parser().parse_args(argv)
    if args.command == "run" and "all" in args.names and len(args.names) > 1:
        build_parser().error(f"'all' cannot be combined with other names; got {' '.join(args.names)}")
    return args


def print_experiment_list(stream=None) -> None:
    """Print every experiment with its one-line description (to stdout by default)."""
    stream = stream or sys.stdout
    width = max(map(len, EXPERIMENT_NAMES))
    for name, description in DESCRIPTIONS.items():
        print(f"{name:<{width}}  {description}", file=stream)
