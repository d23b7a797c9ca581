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

if command -v quarto >/dev/null 2>&1; then
    QUARTO_PYTHON="$PWD/.venv/bin/python" quarto render report || status=1
    # The Russian edition (the course's language): _quarto-ru.yml, written to report/_output-ru/.
    QUARTO_PYTHON="$PWD/.venv/bin/python" quarto render report --profile ru || status=1
    echo
    echo "The report, English and Russian:"
    for edition in _output _output-ru; do
        for file in report/$edition/index.html report/$edition/index.pdf; do
            if [ -f "$file" ]; then echo "    $file"; else echo "    $file (not rendered)"; fi
        done
    done
else
    echo
    echo "Quarto is not installed, so the report was not rendered."
    echo "Install it from https://quarto.org/docs/get-started/ and then run:"
    echo "    QUARTO_PYTHON=.venv/bin/python quarto render report                # English"
    echo "    QUARTO_PYTHON=.venv/bin/python quarto render report --profile ru   # Russian"
fi
exit $status
