#!/usr/bin/env bash
# Set up .venv if needed, run every experiment into MLflow (default store: ./mlruns), time the
# training pipelines with the benchmark (logged to the same store, for the report's performance
# section), then render the report when Quarto is installed. Extra arguments go to `run all`,
# e.g. --data-dir ../shared/data --seeds 0,1,2 --quick; the benchmark gets the ones it shares
# with it (--data-dir, --tracking-uri, --device, --quick). ANNCORE_SKIP_BENCHMARK=1 skips it.
set -uo pipefail
cd "$(dirname "$0")/.."
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

# Quarto on PATH or in .venv/bin (pip install -e ".[report]"); without one, say how to get it.
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
