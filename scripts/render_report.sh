#!/usr/bin/env bash
# Render the report (report/_output/index.html and index.pdf) with the Quarto on PATH, else the one
# that `pip install -e ".[report]"` puts in .venv/bin (PyPI's quarto-cli); the chunks run in .venv's
# Python. Extra arguments go to `quarto render`, e.g. --to html. Exit 3 when there is no Quarto.
set -uo pipefail
cd "$(dirname "$0")/.."
if command -v quarto >/dev/null 2>&1; then
    quarto=quarto
elif [ -x .venv/bin/quarto ]; then
    quarto=.venv/bin/quarto
else
    echo
    echo "Quarto is not installed, so the report was not rendered. Either"
    echo "    .venv/bin/pip install -e \".[report]\"     # Quarto from PyPI (quarto-cli; needs the internet)"
    echo "or install it from https://quarto.org/docs/get-started/, then run"
    echo "    bash scripts/render_report.sh"
    exit 3
fi
QUARTO_PYTHON="$PWD/.venv/bin/python" "$quarto" render report "$@"
