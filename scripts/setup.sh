#!/usr/bin/env bash
# Create .venv (once) and install anncore with its test extras into it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.anncore-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing anncore and its dependencies into .venv (first time: a few minutes)..."
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -c "import anncore, torch, torchvision, mlflow, altair" \
        || { echo "setup: installation failed (see pip output above)" >&2; exit 1; }
    touch "$stamp"
fi
# The report's PDF test compiles with both typst lines Quarto bundles: the dev extra's typst 0.15
# in .venv, and PyPI typst 0.14.9 (typst 0.14.2, Quarto 1.9's) here; one module name, two folders.
if [ ! -d .venv/typst-0.14/typst ]; then
    .venv/bin/python -m pip install --quiet --target .venv/typst-0.14 "typst==0.14.9" 2>&1 | grep -v "is ignored" || true
fi
