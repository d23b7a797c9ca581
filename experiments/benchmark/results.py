"""The benchmark's results shown: a printed table of figures and ratios, and the MLflow metrics and JSON."""

from __future__ import annotations

import sys


def figures_table(figures: dict[str, dict[str, object]]):
    """A pandas table of the headline figures, one row per pipeline."""
    import pandas as pd

    rows = []
    for name, f in figures.items():
        rows.append(
            {
                "pipeline": name,
                "s/epoch": f["seconds_per_epoch"],
                "samples/s": f["samples_per_sec"],
                "µs/step": f["microseconds_per_step"],
                "s per 60k": f["seconds_per_60000_images"],
                "GFLOPS": f["training_gflops"],
                "of peak": f["fraction_of_peak"],
                "eval s/epoch": f["eval_seconds_per_epoch"],
                "run s": f["run_seconds"],
                "peak MiB": f["peak_memory_mib"],
                "optimizer": f["optimizer"],
            }
        )
    return pd.DataFrame(rows)


def print_report(results: dict[str, object], stream=sys.stdout) -> None:
    """Print the figures table, the ratios against their targets, and the conditions."""
    import pandas as pd

    table = figures_table(results["pipelines"])
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"),
              file=stream)
    print("", file=stream)
    for name, value in results["ratios"].items():
        target = results["targets"].get(name)
        verdict = f"(target {target['target']}: {'met' if target['met'] else 'MISSED'})" if target else "(no target)"
        print(f"{name:<40} {value:6.3f}  {verdict}", file=stream)
    print(peak_sentence(results), file=stream)
    if results.get("profile"):
        from experiments.benchmark.profile import profile_lines

        print("\n".join(profile_lines(results["profile"])), file=stream)
    if results.get("stacked"):
        from experiments.benchmark.stacked import stacked_line

        print(stacked_line(results["stacked"]), file=stream)
    print(f"MLflow logging adds {results['logging_seconds_per_run']:.3f} s per run (its pipeline's time outside the "
          "epochs, minus anncore's; median over rounds)", file=stream)
    s, env = results["settings"], results["environment"]
    print(
        f"\n{s['train_size']} training images ({s['train_size_mode']}), {s['epochs']} epochs per run "
        f"(1 warm-up), {s['rounds']} round(s), batch {s['batch_size']}, {env['device']}, "
        f"{env['torch_threads']} torch threads; load average {s['load_average_start']:.2f} at the start, "
        f"{s['load_average_end']:.2f} at the end. Peak memory: {results['pipelines']['anncore']['peak_memory_method']}.",
        file=stream,
    )


def peak_sentence(results: dict[str, object]) -> str:
    """The peak the fractions divide by, how it was measured, and how training FLOPs are counted."""
    peak, flops = results["peak"], results["flops"]
    loads = ", ".join(f"{load:.2f}" for load in peak["load_average_each"])
    return (
        f"peak: fp32 matmul {peak['size']}x{peak['size']}x{peak['size']} at {peak['gflops']:.1f} GFLOPS "
        f"(median of {peak['products_timed']} after warm-up, best {peak['best_gflops']:.1f}; load average {loads} "
        f"when timed); GFLOPS of training = 6 x {flops['forward_multiply_adds_per_sample']:,} forward "
        f"multiply-adds per sample x samples/s (the matmuls autograd runs are "
        f"{flops['executed_matmul_flops_per_sample'] / flops['training_flops_per_sample']:.3f} of that count)"
    )


def log_results(results: dict[str, object]) -> None:
    """Log the figures into the active (benchmark) run: metrics and ``benchmark.json``."""
    import mlflow

    from experiments.tracking import runs

    metrics = {}
    for name, f in results["pipelines"].items():
        for key in ("seconds_per_epoch", "samples_per_sec", "training_gflops", "fraction_of_peak",
                    "peak_memory_mib", "run_seconds", "microseconds_per_step"):
            metrics[f"{name}/{key}"] = f[key]
    metrics.update(results["ratios"])
    metrics["logging_seconds_per_run"] = results["logging_seconds_per_run"]
    metrics["peak_gflops"] = results["peak"]["gflops"]
    metrics["load_average_start"] = results["settings"]["load_average_start"]
    metrics["load_average_end"] = results["settings"]["load_average_end"]
    if results.get("stacked"):
        from experiments.benchmark.stacked import stacked_metrics

        metrics.update(stacked_metrics(results["stacked"]))
    runs.log_metrics(metrics)
    mlflow.log_dict(results, "benchmark.json")
