#!/usr/bin/env bash
# Create .venv (once) and install anncore with its test extras into it. Idempotent. Any failed
# install stops here with pip's own output and the command that failed (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv || { echo "setup: '$PYTHON -m venv .venv' failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi

# pip install "$@" into .venv. On success nothing is shown (pip's build warnings are noise here);
# on failure pip's output (less the "... is ignored" notes of a local package index), then the
# command and pip's exit status, and the script ends with 1.
pip_install() {
    local log status=0
    log=$(mktemp)
    .venv/bin/python -m pip install --quiet "$@" >"$log" 2>&1 || status=$?
    if [ $status -ne 0 ]; then
        grep -v "is ignored" "$log" >&2 || true
        rm -f "$log"
        echo "setup: 'pip install $*' failed (exit $status; pip's output above)" >&2
        exit 1
    fi
    rm -f "$log"
}

# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.anncore-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing anncore and its dependencies into .venv (first time: a few minutes)..."
    pip_install --upgrade pip
    pip_install -e ".[dev]"
    .venv/bin/python -c "import anncore, torch, torchvision, mlflow, altair" \
        || { echo "setup: anncore was installed but does not import (see above)" >&2; exit 1; }
    touch "$stamp"
fi
# The report's PDF test compiles with both typst lines Quarto bundles: the dev extra's typst 0.15
# in .venv, and PyPI typst 0.14.9 (typst 0.14.2, Quarto 1.9's) here; one module name, two folders.
if [ ! -d .venv/typst-0.14/typst ]; then
    echo "Installing typst 0.14 into .venv/typst-0.14 (the PDF test compiles with it too)..."
    pip_install --target .venv/typst-0.14 "typst==0.14.9"
fi
