"""Experiment ``hand_calculations``: every worked example's trace, cross-checked with torch autograd.

Each example of ``anncore.worked_examples`` (the notebook's single neurons, the 2-3-1 forward
pass, the 2-2-1 backpropagation step and the TO-DO 3-2-1 task) is solved exactly and logged
as ``traces/<key>.json``. ``autograd_max_difference`` recomputes each network with torch
autograd in float64; the largest difference over all examples is ``max_autograd_diff``.
``discrepancies.csv`` lists the numbers the notebook prints that are not the exact values
rounded, with the reason.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from experiments.tracking import artifacts, runs
from experiments.settings import Outcome
from experiments.settings import RunSettings

NEEDS_FASHION_MNIST = False
DISCREPANCY_COLUMNS = ["example", "quantity", "printed", "printed_text", "exact", "note"]


def run(settings: RunSettings) -> Outcome:
    """Log the traces, ``autograd_differences.csv``, ``discrepancies.csv`` and ``max_autograd_diff``."""
    from anncore.hand_calculation import autograd_max_difference
    from anncore.worked_examples import WORKED_EXAMPLES, notebook_discrepancies

    traces = {key: example.solve() for key, example in WORKED_EXAMPLES.items()}
    differences = pd.DataFrame(
        {"example": list(traces), "max_abs_difference": [autograd_max_difference(t) for t in traces.values()]}
    )
    discrepancies = pd.DataFrame(
        [dataclasses.asdict(d) for d in notebook_discrepancies()], columns=DISCREPANCY_COLUMNS
    )
    worst = float(differences["max_abs_difference"].max())
    params = {"examples": ",".join(traces), "autograd_dtype": "float64"}
    with runs.tracked_run(settings, "hand_calculations", params=params) as run:
        for key, trace in traces.items():
            artifacts.log_json(trace.to_dict(), f"traces/{key}.json")
        artifacts.log_csv(differences, "autograd_differences.csv")
        artifacts.log_csv(discrepancies, "discrepancies.csv")
        runs.log_metrics({"max_autograd_diff": worst, "notebook_discrepancies": len(discrepancies)})
    return Outcome(run.info.run_id, "max_autograd_diff", worst)
