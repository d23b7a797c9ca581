"""What a suite run leaves in an MLflow store, reduced to what must not change when code moves.

For every run: (experiment, role, arm, seed, sorted param names and values, sorted metric names,
sorted artifact paths), with the params that differ between two identical invocations left out
(ids, times, paths, the git commit, package versions). ``tests/test_mlflow_layout.py`` compares a
fresh ``run all --quick --seeds 0,1`` with ``tests/data/mlflow_layout.json``, recorded before the
layout issue moved the code; after a change that is meant to alter the layout, rewrite it with

    python -m tests.mlflow_layout --data-dir DIR --write tests/data/mlflow_layout.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

# Params whose value is not a property of the layout: they change from one checkout, machine or
# invocation to the next.
VOLATILE_PARAMS = {
    "git_commit", "python_version", "torch_version", "numpy_version", "mlflow_version",
    "anncore_version", "rerun_of", "project_run_id",
}
# The sweep's values that Optuna's TPE sampler chose (and what follows from them: the architecture,
# its parameter count, which trial became the champion). They move with Optuna's version and with
# CPU numerics, so :func:`comparable` checks their form and keeps that, not the value.
SAMPLED_PARAMS = {
    "activation": r"[a-z_]+",
    "architecture": r"784(-[1-9]\d*)+-10",
    "batch_size": r"[1-9]\d*",
    "champion_of_trial": r"\d+",
    "dropout_rate": r"\d+(\.\d+)?(e-\d+)?",
    "learning_rate": r"\d+(\.\d+)?(e-\d+)?",
    "n_hidden_layers": r"[1-9]",
    "parameter_count": r"[1-9]\d*",
}
# MLflow's system metrics (CPU, memory, GPU) are sampled every 10 s by a thread: a run logs them
# or not depending on how long it took, so they are not part of the layout.
SYSTEM_METRICS_PREFIX = "system/"
# Artifacts of MLflow's own (the logged model's files) are kept by name only.
SNAPSHOT_ARGS = ["run", "all", "--quick", "--seeds", "0,1", "--device", "cpu", "--no-progress"]


def _artifact_paths(client, run_id: str, path: str | None = None) -> list[str]:
    paths: list[str] = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            paths.extend(_artifact_paths(client, run_id, item.path))
        else:
            paths.append(item.path)
    return paths


def store_layout(tracking_uri: str) -> list[dict[str, object]]:
    """One record per run in the store, sorted, as described in the module docstring."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    records = []
    for experiment in client.search_experiments():
        if not experiment.name.startswith("anncore-"):
            continue
        for run in client.search_runs([experiment.experiment_id], max_results=10_000):
            tags = run.data.tags
            params = {k: v for k, v in run.data.params.items() if k not in VOLATILE_PARAMS}
            records.append(
                {
                    "experiment": experiment.name,
                    "role": tags.get("anncore.role"),
                    "arm": tags.get("anncore.arm"),
                    "seed": tags.get("anncore.seed"),
                    "status": run.info.status,
                    "params": dict(sorted(params.items())),
                    "metrics": sorted(m for m in run.data.metrics if not m.startswith(SYSTEM_METRICS_PREFIX)),
                    "artifacts": sorted(_artifact_paths(client, run.info.run_id)),
                }
            )
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))


def _parameter_count(architecture: str) -> int:
    sizes = [int(size) for size in architecture.split("-")]
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))


def comparable(record: dict[str, object]) -> dict[str, object]:
    """``record`` with the sweep's sampled values replaced by their form, after checking it.

    What stays exact: every run's experiment, role, arm, seed, status, param names, the values of
    every param not sampled, metric names and artifact paths. A sampled value must still have its
    form (``SAMPLED_PARAMS``), the architecture as many hidden layers as ``n_hidden_layers`` says
    and ``parameter_count`` the count of that architecture.
    """
    if record["experiment"] != "anncore-sweep" or record["role"] != "child":
        return record
    params = dict(record["params"])  # type: ignore[arg-type]
    for name, form in SAMPLED_PARAMS.items():
        if name in params:
            value = str(params[name])
            if not re.fullmatch(form, value):
                raise AssertionError(f"{record['arm']}: param {name}={value!r} is not of the form {form}")
            params[name] = f"<{name}>"
    architecture, layers = record["params"].get("architecture"), record["params"].get("n_hidden_layers")
    if architecture is not None and layers is not None:
        assert architecture.count("-") - 1 == int(layers), (record["arm"], architecture, layers)
    if architecture is not None and "parameter_count" in record["params"]:
        assert int(record["params"]["parameter_count"]) == _parameter_count(architecture), (record["arm"], architecture)
    return {**record, "params": params}


def suite_layout(data_dir: Path, extra_args: list[str] | None = None) -> list[dict[str, object]]:
    """Run ``python -m experiments`` with ``SNAPSHOT_ARGS`` into a temporary store; its layout."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        command = [sys.executable, "-m", "experiments", *SNAPSHOT_ARGS, "--data-dir", str(data_dir),
                   "--tracking-uri", uri, *(extra_args or [])]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return store_layout(uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="FashionMNIST root (default: tiny IDX files written here)")
    parser.add_argument("--write", type=Path, required=True, help="JSON file to write the layout to")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir is None:
            from tests.idx_files import write_fashion_mnist

            args.data_dir = write_fashion_mnist(Path(tmp))
        layout = suite_layout(args.data_dir.resolve())
    args.write.parent.mkdir(parents=True, exist_ok=True)
    args.write.write_text(json.dumps(layout, indent=1, sort_keys=True) + "\n")
    print(f"{len(layout)} runs written to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
