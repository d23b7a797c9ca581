"""The one exception type for mistakes a user can fix from the command line.

``main`` prints a ``UserInputError`` as a single ``error: ...`` line and exits with status 2,
so every message must name the bad value and say what is accepted.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """A bad option, store, dataset or run id; reported as one line, exit status 2."""
