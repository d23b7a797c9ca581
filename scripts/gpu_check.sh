#!/usr/bin/env bash
# The GPU check. On a machine with CUDA: run the tests marked `cuda` (they skip elsewhere), every
# experiment with `run all --device cuda` into a new store, the benchmark with --device cuda, and a
# short sweep twice, one trial at a time (--trials-per-batch 1) and stacked (the default K on CUDA);
# then print one summary. Quick sizes by default; --full runs them at the notebook's sizes.
#
# Usage: bash scripts/gpu_check.sh [--data-dir DIR] [--full] [--out DIR] [--steps LIST] [--dry-run]
#   --data-dir DIR  FashionMNIST root (default: ./data, downloaded when missing)
#   --full          run all, the benchmark and the sweeps without --quick
#   --out DIR       folder for the MLflow store, benchmark.json and each step's log
#                   (default: a new temporary folder, kept and named in the summary)
#   --steps LIST    only these steps, comma-separated: tests, run-all, benchmark, sweeps (default: all)
#   --dry-run       print the steps it would run and exit 0 (no CUDA needed, nothing run)
# Exit status: 0 every step passed, 1 a step failed, 2 bad usage, 77 no CUDA device (nothing run).
# ANNCORE_GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (the cuda tests then skip): a test
# of this script's own plumbing on a machine without a GPU, not a GPU check. There the stacked
# sweep's default K is 1; ANNCORE_GPU_CHECK_TRIALS_PER_BATCH=K gives it one, and
# ANNCORE_GPU_CHECK_SWEEP_TRIALS=N runs N trials per sweep instead of 64.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '7,14p' "$0" | sed 's/^# \{0,1\}//'; }
data_dir="" full=0 out="" dry_run=0 only="tests,run-all,benchmark,sweeps"
while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) [ $# -ge 2 ] || { echo "error: --data-dir needs a folder" >&2; exit 2; }; data_dir=$2; shift ;;
        --data-dir=*) data_dir=${1#*=} ;;
        --out) [ $# -ge 2 ] || { echo "error: --out needs a folder" >&2; exit 2; }; out=$2; shift ;;
        --out=*) out=${1#*=} ;;
        --steps) [ $# -ge 2 ] || { echo "error: --steps needs a list" >&2; exit 2; }; only=$2; shift ;;
        --steps=*) only=${1#*=} ;;
        --full) full=1 ;;
        --dry-run) dry_run=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1'; accepted: --data-dir DIR, --full, --out DIR, --steps LIST, --dry-run" >&2; exit 2 ;;
    esac
    shift
done

PY=${PYTHON_BIN:-.venv/bin/python}
device=${ANNCORE_GPU_CHECK_DEVICE:-cuda}
case "$device" in cuda | cpu) ;; *) echo "error: ANNCORE_GPU_CHECK_DEVICE=$device; accepted: cuda (default) or cpu" >&2; exit 2 ;; esac
IFS=, read -ra wanted <<< "$only"
[ ${#wanted[@]} -gt 0 ] || { echo "error: --steps '$only' names no step; accepted: tests, run-all, benchmark, sweeps" >&2; exit 2; }
for key in "${wanted[@]}"; do
    case "$key" in tests | run-all | benchmark | sweeps) ;;
        *) echo "error: --steps '$only': unknown step '$key'; accepted: tests, run-all, benchmark, sweeps" >&2; exit 2 ;;
    esac
done
stack_k=${ANNCORE_GPU_CHECK_TRIALS_PER_BATCH:-}
case "$stack_k" in "" | [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | 10[01][0-9] | 102[0-4]) ;;
    *) echo "error: ANNCORE_GPU_CHECK_TRIALS_PER_BATCH=$stack_k; accepted: a number of trials from 1 to 1024" >&2; exit 2 ;;
esac
sweep_trials=${ANNCORE_GPU_CHECK_SWEEP_TRIALS:-64}  # 64: two stacked groups at the default K on CUDA (32)
case "$sweep_trials" in [1-9] | [1-9][0-9] | [1-9][0-9][0-9]) ;;
    *) echo "error: ANNCORE_GPU_CHECK_SWEEP_TRIALS=$sweep_trials; accepted: a number of trials from 1 to 999" >&2; exit 2 ;;
esac
# Every input is checked above, before anything is installed or the output folder is made.
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

# The steps, in order: a key (--steps), a name, a log file and a command each.
stack_args=()
[ -n "$stack_k" ] && stack_args=(--trials-per-batch "$stack_k")
keys=(tests run-all benchmark sweeps sweeps)
names=("cuda tests" "run all" "benchmark" "sweep K=1" "sweep stacked")
logs=(cuda-tests.log run-all.log benchmark.log sweep-one.log sweep-stacked.log)
step_0=("$PY" -m pytest -m cuda -q -p no:cacheprovider)
step_1=("$PY" -m experiments run all --device "$device" ${size_args[@]+"${size_args[@]}"} ${data_args[@]+"${data_args[@]}"}
        --tracking-uri "$store" --no-progress)
step_2=("$PY" -m experiments.benchmark --device "$device" ${size_args[@]+"${size_args[@]}"} ${data_args[@]+"${data_args[@]}"}
        --log-mlflow --tracking-uri "$store" --json "$out/benchmark.json" --no-progress)
step_3=("$PY" -m experiments run sweep --device "$device" ${size_args[@]+"${size_args[@]}"} ${data_args[@]+"${data_args[@]}"}
        --tracking-uri "$store" --no-progress --trials "$sweep_trials" --study-name gpu-check-one-at-a-time --trials-per-batch 1)
step_4=("$PY" -m experiments run sweep --device "$device" ${size_args[@]+"${size_args[@]}"} ${data_args[@]+"${data_args[@]}"}
        --tracking-uri "$store" --no-progress --trials "$sweep_trials" --study-name gpu-check-stacked
        ${stack_args[@]+"${stack_args[@]}"})
selected=()
for i in "${!keys[@]}"; do
    [[ ",$only," == *",${keys[i]},"* ]] && selected+=("$i")
done

if [ $dry_run -eq 1 ]; then
    echo "GPU check, dry run: the steps it would run on a CUDA machine (output in $out):"
    for i in "${selected[@]}"; do
        declare -n step="step_$i"
        printf '  %-15s' "${names[i]}:"; printf ' %q' "${step[@]}"; echo
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
for i in "${selected[@]}"; do
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
for i in "${selected[@]}"; do
    printf '  %-13s %-16s %7s s   %s\n' "${names[i]}" "${results[i]}" "${seconds[i]}" "$(tail -n 1 "$out/${logs[i]}")"
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
    sweep = client.get_experiment_by_name("anncore-sweep")
    pace = {}
    for study in ("gpu-check-one-at-a-time", "gpu-check-stacked"):
        parents = client.search_runs([sweep.experiment_id], f"tags.`anncore.study_name` = '{study}' and tags.`anncore.role` = 'parent'") if sweep else []
        if parents and "trials_per_minute" in parents[0].data.metrics:
            pace[study] = parents[0].data.metrics
    if len(pace) == 2:
        one, stacked = pace["gpu-check-one-at-a-time"], pace["gpu-check-stacked"]
        print(f"  sweep: trials per minute, stacked vs one at a time: {stacked['trials_per_minute']:.1f} "
              f"(K={stacked['trials_per_batch']:.0f}) vs {one['trials_per_minute']:.1f} (K=1), "
              f"{stacked['trials_per_minute'] / one['trials_per_minute']:.1f}x; {stacked['trials_this_invocation']:.0f} trials "
              "each, logging included")
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
