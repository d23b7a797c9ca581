"""``python -m experiments.benchmark``: see ``experiments.benchmark.cli``."""

import sys

from experiments.benchmark.cli import main

sys.exit(main())
