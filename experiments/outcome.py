"""What an experiment hands back to the suite for its summary table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """The run an experiment created and its headline number.

    Attributes
    ----------
    run_id : str
        The MLflow run (the parent run for a study).
    metric : str
        Name of the key metric, e.g. ``"final_test_acc"`` or ``"best: deep mean_final_test_acc"``.
    value : float
        Its value.
    """

    run_id: str
    metric: str
    value: float
