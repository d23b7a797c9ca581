"""``python -m experiments`` (console script ``anncore-experiments``): list, run and rerun experiments.

Examples::

    python -m experiments list
    python -m experiments run all --data-dir ../shared/data
    python -m experiments run depth activation_study --seeds 0,1,2
    python -m experiments run custom --hidden-sizes 256,128 --dropout 0.2 --lr 0.001 --epochs 3
    python -m experiments run sweep --trials 40 --workers 2    # Optuna search; run again to continue it
    python -m experiments rerun 3f2a...                # same params, tagged anncore.rerun_of
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys

from experiments.arguments import command_main
from experiments.cli import parse_args, print_experiment_list
from experiments.settings import RunSettings
from experiments.studies import EXPERIMENT_NAMES
from experiments.tracking.signals import Terminated, sigterm_raises


def dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` prints every thread's Python stack to stderr (what is it doing?)."""
    if hasattr(signal, "SIGUSR1") and sys.__stderr__ is not None:
        try:
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
        except (ValueError, OSError, AttributeError):  # no usable stderr, or not the main thread
            pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for bad input, with one ``error:`` line)."""
    dump_stacks_on_sigusr1()
    return command_main(parse_args, run_command, argv)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command (``list``, ``run``, ``rerun``, ``cleanup``); its exit status."""
    if args.command == "list":
        print_experiment_list()
        return 0

    from experiments import rerun, suite
    from experiments.tracking import store

    # `mlflow run` (MLproject) starts a run of its own and passes its id in MLFLOW_RUN_ID, which
    # would make our first mlflow.start_run resume it; our runs carry its id as a tag instead.
    args.project_run_id = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        with sigterm_raises():  # SIGTERM ends the command like Ctrl-C from the start (status 143)
            uri = store.resolve_tracking_uri(args.tracking_uri)
            if args.command == "rerun":
                return rerun.rerun(args.run_id, args, uri)
            if args.command == "cleanup":
                from experiments.tracking.liveness import cleanup_command

                return cleanup_command(args, uri)
            names = list(EXPERIMENT_NAMES) if args.names == ["all"] else list(dict.fromkeys(args.names))
            return suite.run_suite(names, RunSettings.from_args(args), uri)
    except KeyboardInterrupt as interruption:  # outside any run (runs end KILLED themselves)
        print("interrupted", file=sys.stderr)
        return suite.EXIT_TERMINATED if isinstance(interruption, Terminated) else suite.EXIT_INTERRUPTED


def exit_promptly(status: int) -> None:
    """Exit with ``status``; after Ctrl-C or SIGTERM (130, 143) without the interpreter's teardown.

    Why: the runs are ended KILLED by then, and tearing down torch and MLflow takes a second or
    two (ten and more on a busy machine) before the prompt comes back.
    """
    if status in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def console_main() -> None:
    """The ``anncore-experiments`` console script: :func:`main`, then :func:`exit_promptly`."""
    exit_promptly(main())


if __name__ == "__main__":
    console_main()
