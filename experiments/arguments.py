"""What every command line of the project shares: strict argument types, one-line errors and one ``main``.

An argument type returns a clean value or raises ``argparse.ArgumentTypeError`` naming the
value and what is accepted; nothing a user types is ever evaluated. :func:`command_main` runs
an entry point: parse (a usage error is one ``error: ...`` line and exit status 2), then run,
turning a :class:`~experiments.settings.UserInputError` into one ``error:`` line and status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, NoReturn, Sequence

from experiments.settings import UserInputError

EXIT_BAD_INPUT = 2


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``error: ...`` line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message}\n")


def command_main(
    parse: Callable[[Sequence[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` with ``parse`` and return ``run(args)``; ``--help`` is 0, bad input 2 with one ``error:`` line."""
    try:
        args = parse(argv)
    except SystemExit as exit_request:  # argparse: --help (0) or a usage error (2)
        return int(exit_request.code or 0)
    try:
        return run(args)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def integer(text: str, accepted: str) -> int:
    """``text`` as a base-10 integer; ``ArgumentTypeError`` saying ``accepted`` otherwise."""
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; {accepted}") from None


def finite_float(text: str, accepted: str) -> float:
    """``text`` as a finite number; ``ArgumentTypeError`` saying ``accepted`` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; {accepted}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not finite; {accepted}")
    return value


def ranged_int(low: int, high: int | None, accepted: str) -> Callable[[str], int]:
    """An argument type for integers in ``low..high`` (``high`` None: no upper bound)."""

    def parse(text: str) -> int:
        value = integer(text, accepted)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is {'too small' if high is None else 'out of range'}; {accepted}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; {accepted}")
        return value

    return parse


def ranged_float(accepted: str, *, above: float | None = None, at_least: float | None = None,
                 below: float | None = None, at_most: float | None = None) -> Callable[[str], float]:
    """An argument type for finite numbers within the given bounds (each optional, strict or not)."""

    def parse(text: str) -> float:
        value = finite_float(text, accepted)
        inside = ((above is None or value > above) and (at_least is None or value >= at_least)
                  and (below is None or value < below) and (at_most is None or value <= at_most))
        if not inside:
            only_positive = above == 0.0 and at_least is None and below is None and at_most is None
            raise argparse.ArgumentTypeError(f"{text!r} is {'not positive' if only_positive else 'out of range'}; {accepted}")
        return value

    return parse
