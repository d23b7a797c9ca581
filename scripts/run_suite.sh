#!/usr/bin/env bash
# Set up .venv if needed, run every experiment into MLflow (default store: ./mlruns),
# then render the report when Quarto is installed. Extra arguments go to `run all`,
# e.g. --data-dir ../shared/data --seeds 0,1,2 --quick.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/python -m experiments run all "$@"
status=$?
if command -v quarto >/dev/null 2>&1; then
    QUARTO_PYTHON="$PWD/.venv/bin/python" quarto render report || status=1
else
    echo
    echo "Quarto is not installed, so the report was not rendered."
    echo "Install it from https://quarto.org/docs/get-started/ and then run:"
    echo "    QUARTO_PYTHON=.venv/bin/python quarto render report"
fi
exit $status
