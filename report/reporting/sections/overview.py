"""Serves report/index.qmd: the report's opening: the Vega JavaScript for the HTML, and where every result came from."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from IPython.display import Markdown

from experiments.studies import DESCRIPTIONS, EXPERIMENT_NAMES
from reporting.display import Outputs, VegaScripts, flags_as_code, markdown_table
from reporting.i18n import _
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
                {"experiment": f"`{name}`", "run": _("none yet"), "started": "", "device": "",
                 "mode": "", "what": _("run `{command}`").format(command=run_command(name))}
            )  # fmt: skip
            continue
        rows.append(
            {
                "experiment": f"`{name}`",
                "run": f"`{run.short_id}`",
                "started": format_time(run.start_time),
                "device": run.device,
                "mode": _("quick") if run.quick else _("full"),
                "what": flags_as_code(_(DESCRIPTIONS[name])),
            }
        )
    headers = {"experiment": _("experiment"), "run": _("run"), "started": _("started"), "device": _("device"),
               "mode": _("mode"), "what": _("what it shows")}  # fmt: skip
    return pd.DataFrame(rows, columns=list(headers)).rename(columns=headers)


def provenance() -> Outputs:
    """Where the numbers come from: the store, every study's run, the time span and devices."""
    store = open_store()
    runs = [run for name in EXPERIMENT_NAMES if (run := store.latest_finished_run(name))]
    rendered = format_time(datetime.now(timezone.utc))
    if not runs:
        summary = _(
            "The MLflow store `{store}` holds no finished runs yet, so the result sections below say "
            "which command produces them (or run everything with `python -m experiments run all`). "
            "Rendered {rendered}."
        ).format(store=store.tracking_uri, rendered=rendered)
        return Outputs(
            Markdown(summary + "\n"), Markdown(markdown_table(provenance_frame(store), _("Experiments and their runs"), "provenance"))
        )
    starts = sorted(run.start_time for run in runs if run.start_time)
    devices = sorted({run.device for run in runs})
    latest = max(runs, key=lambda run: run.start_time or datetime.min.replace(tzinfo=timezone.utc))
    versions = ", ".join(
        f"{key.removesuffix('_version')} {latest.params[key]}" if key != "git_commit"
        else _("commit `{commit}`").format(commit=latest.params[key][:12])
        for key in VERSION_PARAMS
        if key in latest.params
    )
    first, last = format_time(starts[0]), format_time(starts[-1])
    summary = (
        _(
            "Every number below comes from the MLflow store `{store}`: the latest finished run of each "
            "experiment, made between {first} and {last} on {devices}{versions}. Report rendered {rendered}."
        )
        if first != last
        else _(
            "Every number below comes from the MLflow store `{store}`: the latest finished run of each "
            "experiment, all made at {first} on {devices}{versions}. Report rendered {rendered}."
        )
    ).format(
        store=store.tracking_uri,
        first=first,
        last=last,
        devices=", ".join(f"`{d}`" for d in devices),
        versions=f" ({versions})" if versions else "",
        rendered=rendered,
    )
    return Outputs(
        Markdown(summary + "\n"),
        Markdown(markdown_table(provenance_frame(store), _("Experiments and the runs this report shows"), "provenance")),
    )
