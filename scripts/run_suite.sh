#!/usr/bin/env bash
# Set up .venv if needed, run every experiment into MLflow (default store: ./mlruns), time the
# training pipelines with the benchmark (logged to the same store, for the report's performance
# section), then render the report, installing Quarto into .venv first when none is found.
# Extra arguments go to `run all`, e.g. --data-dir ../shared/data --seeds 0,1,2 --quick; the
# benchmark gets the ones it shares with it (--data-dir, --tracking-uri, --device, --quick).
# ANNCORE_SKIP_BENCHMARK=1 skips it.
set -uo pipefail
cd "$(dirname "$0")/.."

# pip install -e ".[report]" into .venv; on failure one message with pip's reason. pip builds the
# quarto-cli wheel (the download) before it changes anything installed; should .venv no longer
# import anncore all the same, setup.sh reinstalls it, so the venv is never left broken.
install_quarto() {
    local log reason
    log=$(mktemp)
    echo
    echo "Quarto is not installed: installing it into .venv (pip install -e \".[report]\": PyPI's quarto-cli downloads Quarto)..."
    if .venv/bin/python -m pip install --quiet -e ".[report]" >"$log" 2>&1 && [ -x .venv/bin/quarto ]; then
        rm -f "$log"
        return 0
    fi
    reason=$(grep -m1 -E "Error downloading Quarto|ERROR:" "$log" | sed 's/^ *//')
    echo "Could not install Quarto (${reason:-$(tail -n1 "$log")}), so the report was not rendered;"
    echo "the runs are in MLflow. Once online (or with Quarto from https://quarto.org/docs/get-started/), run"
    echo "    .venv/bin/pip install -e \".[report]\" && bash scripts/render_report.sh"
    if ! .venv/bin/python -c "import anncore, experiments" >/dev/null 2>&1; then
        rm -f .venv/.anncore-installed
        bash scripts/setup.sh >&2 || echo "setup.sh could not repair .venv" >&2
    fi
    rm -f "$log"
    return 1
}
bash scripts/setup.sh || exit 1
.venv/bin/python -m experiments run all "$@"
status=$?

benchmark_args=(--log-mlflow --no-progress)
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --data-dir | --tracking-uri | --device)
            benchmark_args+=("${args[i]}" "${args[i + 1]:-}")
            i=$((i + 1)) ;;
        --data-dir=* | --tracking-uri=* | --device=* | --quick)
            benchmark_args+=("${args[i]}") ;;
    esac
done
if [ "${ANNCORE_SKIP_BENCHMARK:-0}" != 1 ] && [ $status -eq 0 ]; then
    echo
    echo "Benchmark: python -m experiments.benchmark ${benchmark_args[*]}"
    .venv/bin/python -m experiments.benchmark "${benchmark_args[@]}" || status=1
fi

# Quarto on PATH or in .venv/bin; without one, install it as README says (PyPI's quarto-cli, whose
# build downloads Quarto; offline it fails in about 15 s). A failed install is said in one message
# and leaves the exit status as the experiments made it. ANNCORE_NO_QUARTO_INSTALL=1: no install.
if ! command -v quarto >/dev/null 2>&1 && [ ! -x .venv/bin/quarto ] && [ "${ANNCORE_NO_QUARTO_INSTALL:-0}" != 1 ]; then
    install_quarto || exit $status
fi
# Both editions: English (report/_output/), then Russian (profile ru, _quarto-ru.yml: report/_output-ru/).
bash scripts/render_report.sh
rendered=$?
case $rendered in 0 | 3) ;; *) status=1 ;; esac
if [ $rendered -ne 3 ]; then
    bash scripts/render_report.sh --profile ru || { status=1; rendered=1; }
    echo
    echo "The report, English and Russian:"
    for edition in _output _output-ru; do
        for file in report/$edition/index.html report/$edition/index.pdf; do
            if [ -f "$file" ]; then echo "    $file"; else echo "    $file (not rendered)"; fi
        done
    done
fi
exit $status
