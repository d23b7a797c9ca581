#!/usr/bin/env bash
# The GPU check. On a machine with CUDA: run the tests marked `cuda` (they skip elsewhere), every
# experiment with `run all --device cuda` into a new store, and the benchmark with --device cuda;
# then print one summary. Quick sizes by default; --full runs both at the notebook's sizes.
#
# Usage: bash scripts/gpu_check.sh [--data-dir DIR] [--full] [--out DIR] [--dry-run]
#   --data-dir DIR  FashionMNIST root (default: ./data, downloaded when missing)
#   --full          run all and the benchmark without --quick
#   --out DIR       folder for the MLflow store, benchmark.json and each step's log
#                   (default: a new temporary folder, kept and named in the summary)
#   --dry-run       print the steps it would run and exit 0 (no CUDA needed, nothing run)
# Exit status: 0 every step passed, 1 a step failed, 2 bad usage, 77 no CUDA device (nothing run).
# ANNCORE_GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (the cuda tests then skip): a test
# of this script's own plumbing on a machine without a GPU, not a GPU check.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '6,12p' "$0" | sed 's/^# \{0,1\}//'; }
data_dir="" full=0 out="" dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) [ $# -ge 2 ] || { echo "error: --data-dir needs a folder" >&2; exit 2; }; data_dir=$2; shift ;;
        --data-dir=*) data_dir=${1#*=} ;;
        --out) [ $# -ge 2 ] || { echo "error: --out needs a folder" >&2; exit 2; }; out=$2; shift ;;
        --out=*) out=${1#*=} ;;
        --full) full=1 ;;
        --dry-run) dry_run=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1'; accepted: --data-dir DIR, --full, --out DIR, --dry-run" >&2; exit 2 ;;
    esac
    shift
done

PY=${PYTHON_BIN:-.venv/bin/python}
device=${ANNCORE_GPU_CHECK_DEVICE:-cuda}
case "$device" in cuda | cpu) ;; *) echo "error: ANNCORE_GPU_CHECK_DEVICE=$device; accepted: cuda (default) or cpu" >&2; exit 2 ;; esac
if [ $dry_run -eq 0 ] && [ -z "${PYTHON_BIN:-}" ] && [ ! -x .venv/bin/python ]; then
    bash scripts/setup.sh || exit 1
fi
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/anncore-gpu-check.XXXXXX")
mkdir -p "$out" && out=$(cd "$out" && pwd) || { echo "error: --out $out: cannot create that folder" >&2; exit 2; }
store="sqlite:///$out/mlflow.db"
size_args=(--quick)
[ $full -eq 1 ] && size_args=()
data_args=()
[ -n "$data_dir" ] && data_args=(--data-dir "$data_dir")

# The steps, in order: a name, a log file and a command each.
names=("cuda tests" "run all" "benchmark")
logs=(cuda-tests.log run-all.log benchmark.log)
step_0=("$PY" -m pytest -m cuda -q -p no:cacheprovider)
step_1=("$PY" -m experiments run all --device "$device" ${size_args[@]+"${size_args[@]}"} ${data_args[@]+"${data_args[@]}"}
        --tracking-uri "$store" --no-progress)
step_2=("$PY" -m experiments.benchmark --device "$device" ${size_args[@]+"${size_args[@]}"} ${data_args[@]+"${data_args[@]}"}
        --log-mlflow --tracking-uri "$store" --json "$out/benchmark.json" --no-progress)

if [ $dry_run -eq 1 ]; then
    echo "GPU check, dry run: the steps it would run on a CUDA machine (output in $out):"
    for i in "${!names[@]}"; do
        declare -n step="step_$i"
        printf '  %-11s' "${names[i]}:"; printf ' %q' "${step[@]}"; echo
        unset -n step
    done
    rmdir "$out" 2>/dev/null
    exit 0
fi

if [ "$device" = cuda ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "GPU check summary: SKIPPED, no CUDA device here (torch.cuda.is_available() is False)."
    echo "  Nothing was run; the tests marked cuda skip on this machine. Run this script on a machine with a GPU."
    rmdir "$out" 2>/dev/null
    exit 77
fi

declare -a results seconds
status=0
for i in "${!names[@]}"; do
    declare -n step="step_$i"
    echo "=== ${names[i]}:$(printf ' %q' "${step[@]}")"
    start=$(date +%s%N)
    "${step[@]}" 2>&1 | tee "$out/${logs[i]}"
    rc=${PIPESTATUS[0]}
    elapsed=$((($(date +%s%N) - start) / 100000000))  # tenths of a second
    seconds[i]="$((elapsed / 10)).$((elapsed % 10))"
    if [ "$rc" -eq 0 ]; then results[i]=PASS; else results[i]="FAIL (exit $rc)"; status=1; fi
    unset -n step
done

echo
echo "GPU check summary ($("$PY" -c "import sys, torch; print((torch.cuda.get_device_name(0) if sys.argv[1] == 'cuda' else 'cpu, ANNCORE_GPU_CHECK_DEVICE: not a GPU check'), '| torch', torch.__version__, '| CUDA', torch.version.cuda)" "$device"))"
for i in "${!names[@]}"; do
    printf '  %-11s %-16s %7s s   %s\n' "${names[i]}" "${results[i]}" "${seconds[i]}" "$(tail -n 1 "$out/${logs[i]}")"
done
"$PY" - "$out/benchmark.json" "$store" <<'EOF'
import json, sys
from pathlib import Path

figures, uri = Path(sys.argv[1]), sys.argv[2]
if figures.exists():
    r = json.loads(figures.read_text())
    p, a, ratios = r["peak"], r["pipelines"]["anncore"], r["ratios"]
    print(f"  benchmark: fp32 matmul {p['size']}^3 {p['gflops']:,.0f} GFLOPS; anncore {a['training_gflops']:,.1f} GFLOPS "
          f"({ratios['anncore_fraction_of_peak']:.3f} of peak), {a['seconds_per_epoch']:.3g} s/epoch; "
          f"anncore/floor {ratios['anncore_over_floor']:.3f}; notebook/anncore {ratios['notebook_over_anncore']:.3f}; "
          f"load average {r['settings']['load_average_start']:.2f}")
    steps = ", ".join(f"{name} {f['microseconds_per_step']:,.0f}" for name, f in r["pipelines"].items()
                      if "microseconds_per_step" in f)
    if steps:
        print(f"  µs per step: {steps}")
    if "anncore_over_captured_floor" in ratios:
        c, target = r["pipelines"]["captured_floor"], r["targets"]["anncore_over_captured_floor"]
        print(f"  captured floor (CUDA graph): {c['seconds_per_60000_images']:.3g} s per 60k images; "
              f"anncore/captured floor {ratios['anncore_over_captured_floor']:.3f} "
              f"(target {target['target']}: {'met' if target['met'] else 'MISSED'})")
    stacked = r.get("stacked")
    if stacked:
        print(f"  stacked training ({stacked['architecture']}, {stacked['epochs']} epochs of {stacked['train_size']} images): "
              + ", ".join(f"K={k} {v['model_epochs_per_second']:.3g}" for k, v in stacked["by_members"].items())
              + f" model-epochs/s against {stacked['one_at_a_time']['model_epochs_per_second']:.3g} one at a time "
              f"(best {stacked['best_speedup']:.1f}x)")
try:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=5000)
    statuses = sorted({run.info.status for run in runs})
    devices = sorted({run.data.params.get("device", "?") for run in runs})
    print(f"  MLflow: {len(runs)} runs in the store, status {', '.join(statuses) or 'none'}, device param {', '.join(devices) or 'none'}")
except Exception as error:  # the summary must not hide the steps' results
    print(f"  run all: could not read the store ({error})")
EOF
echo "  store: $store"
echo "  figures: $out/benchmark.json; logs: $out/*.log"
exit $status
