"""Tables shared by the two study sections (report/_07-depth.qmd, report/_08-activation-study.qmd):
one row per arm from a study's ``summary.csv`` and ``results.csv``, and the children's histories."""

from __future__ import annotations

import math

import pandas as pd

from reporting import study_findings
from reporting.i18n import _, integer
from reporting.store import Store, StoredRun
from reporting.training_tables import percent



def _mean_std(row: pd.Series, metric: str, fmt) -> str:
    mean, std = row[f"mean_{metric}"], row.get(f"std_{metric}", math.nan)
    if row.get("n_seeds", 1) > 1 and not math.isnan(std):
        return f"{fmt(mean)} ± {fmt(std)}"
    return fmt(mean)


def summary_frame(summary: pd.DataFrame, results: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per arm: architecture, parameters, time, accuracies (mean ± std) and child runs."""
    rows = []
    for _index, row in summary.iterrows():
        children = results[results["arm"] == row["arm"]]
        shown = {
            _("arm"): study_findings.display_name(row["arm"]),
            _("architecture"): str(row.get("architecture", "")),
            _("parameters"): integer(row["parameter_count"]),
            _("seeds"): str(int(row.get("n_seeds", len(children)))),
            _("training time (s)"): _mean_std(row, "train_time_s", lambda v: f"{v:.1f}"),
            _("train accuracy"): _mean_std(row, "final_train_acc", percent),
            _("test accuracy"): _mean_std(row, "final_test_acc", percent),
        }
        if "epochs_to_target" in extra:
            value = row.get("mean_epochs_to_target", math.nan)
            shown[_("epochs to target")] = _("not reached") if pd.isna(value) else f"{value:g}"
        shown[_("child runs")] = " ".join(f"`{run_id[:8]}`" for run_id in children["run_id"])
        rows.append(shown)
    return pd.DataFrame(rows)


def display_arms(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its ``arm`` column as the tables write it (``relu`` -> ``ReLU``), for the charts."""
    return frame.assign(arm=frame["arm"].astype(str).map(study_findings.display_name))


def histories(store: Store, parent: StoredRun, results: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for _index, row in results.iterrows():
        child = store.run_by_id(parent.name, row["run_id"])
        frames.append(store.load_csv(child, "history.csv").assign(arm=row["arm"], seed=row["seed"]))
    return pd.concat(frames, ignore_index=True)
