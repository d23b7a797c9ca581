"""Serves report/index.qmd: the report's opening: the Vega JavaScript for the HTML, and where every result came from."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from IPython.display import Markdown

from experiments.studies import DESCRIPTIONS, EXPERIMENT_NAMES
from reporting.display import Outputs, VegaScripts, markdown_table
from reporting.store import Store, format_time, open_store, run_command

VERSION_PARAMS = ("torch_version", "numpy_version", "mlflow_version", "python_version", "git_commit")


def vega_scripts() -> VegaScripts:
    """The Vega, Vega-Lite and vega-embed JavaScript, once per HTML document (no CDN)."""
    return VegaScripts()


def provenance_frame(store: Store) -> pd.DataFrame:
    """One row per experiment: its latest finished run, when and where it ran, or how to make it."""
    rows = []
    for name in EXPERIMENT_NAMES:
        run = store.latest_finished_run(name)
        if run is None:
            rows.append(
                {"experiment": f"`{name}`", "run": "none yet", "started": "", "device": "",
                 "mode": "", "what": f"run `{run_command(name)}`"}
            )  # fmt: skip
            continue
        rows.append(
            {
                "experiment": f"`{name}`",
                "run": f"`{run.short_id}`",
                "started": format_time(run.start_time),
                "device": run.device,
                "mode": "quick" if run.quick else "full",
                "what": DESCRIPTIONS[name],
            }
        )
    return pd.DataFrame(rows)


def provenance() -> Outputs:
    """Where the numbers come from: the store, every study's run, the time span and devices."""
    store = open_store()
    runs = [run for name in EXPERIMENT_NAMES if (run := store.latest_finished_run(name))]
    rendered = format_time(datetime.now(timezone.utc))
    if not runs:
        summary = (
            f"The MLflow store `{store.tracking_uri}` holds no finished runs yet, so the result "
            f"sections below say which command produces them (or run everything with "
            f"`python -m experiments run all`). Rendered {rendered}."
        )
        return Outputs(Markdown(summary + "\n"), Markdown(markdown_table(provenance_frame(store), "Experiments and their runs")))
    starts = sorted(run.start_time for run in runs if run.start_time)
    devices = sorted({run.device for run in runs})
    latest = max(runs, key=lambda run: run.start_time or datetime.min.replace(tzinfo=timezone.utc))
    versions = ", ".join(
        f"{key.removesuffix('_version')} {latest.params[key]}" if key != "git_commit" else f"commit `{latest.params[key][:12]}`"
        for key in VERSION_PARAMS
        if key in latest.params
    )
    summary = (
        f"Every number below comes from the MLflow store `{store.tracking_uri}`: the latest "
        f"finished run of each experiment, made between {format_time(starts[0])} and "
        f"{format_time(starts[-1])} on {', '.join(f'`{d}`' for d in devices)}"
        f"{f' ({versions})' if versions else ''}. Report rendered {rendered}."
    )
    return Outputs(
        Markdown(summary + "\n"),
        Markdown(markdown_table(provenance_frame(store), "Experiments and the runs this report shows")),
    )
