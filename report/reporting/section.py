"""One report section backed by the latest finished run of one study.

A section's helpers are decorated with :meth:`Section.output`: they receive the store and
the run, and when the store has no finished run of the study they display nothing, while
:meth:`Section.status` (the section's first chunk) says which command produces the run. So a
missing experiment never fails the render, and the message stands in place of its results.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import altair as alt
import pandas as pd
from IPython.display import Markdown

from reporting.display import ChartOutput, Outputs, markdown_table
from reporting.i18n import _, ngettext
from reporting.store import Store, StoredRun, format_time, open_store, run_command


class Section:
    """Report helpers' access to one study's latest finished run.

    Parameters
    ----------
    name : str
        The study: an experiment's name such as ``"baseline"``, or ``"benchmark"``
        (``reporting.store.STUDY_NAMES``).
    """

    def __init__(self, name: str) -> None:
        run_command(name)  # validates the name
        self.name = name

    def __repr__(self) -> str:
        return f"Section({self.name!r})"

    def store(self) -> Store:
        """The report's store (found anew on each call, so ``MLFLOW_TRACKING_URI`` is honoured)."""
        return open_store()

    def run(self) -> StoredRun | None:
        """The latest finished top-level run of the study, or None."""
        return self.store().latest_finished_run(self.name)

    def missing_message(self) -> str:
        """Markdown saying the study has no finished run and which command makes one."""
        return (
            "::: {.callout-warning}\n"
            + _(
                "**No results yet.** The MLflow store `{store}` has no finished run of the "
                "experiment `{experiment}`. Produce it with"
            ).format(store=self.store().tracking_uri, experiment=f"anncore-{self.name}")
            + f"\n\n```bash\n{run_command(self.name)}\n```\n\n"
            + _("(add `--quick` for a short run), then render the report again.")
            + "\n:::\n"
        )

    def status(self) -> Markdown:
        """The section's provenance sentence, or the missing-run message."""
        run = self.run()
        if run is None:
            return Markdown(self.missing_message())
        children = self.store().child_runs(run) if run.tags.get("anncore.role") == "parent" else []
        n = len(children)
        child_note = (
            ngettext(
                ", with {n} child run (one per arm and seed)", ", with {n} child runs (one per arm and seed)", n
            ).format(n=n)
            if n
            else ""
        )
        trains = "epochs" in run.params
        quick = (
            " " + _("Made in quick mode (`--quick`): training was shortened, so accuracies are lower than a full run's.")
            if run.quick and trains
            else ""
        )
        cited = _("Results from {run}{children}; it finished {time}.").format(
            run=run.citation(), children=child_note, time=format_time(run.end_time)
        )
        return Markdown(f"*{cited}{quick}*\n")

    def output(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate a helper ``function(store, run, *args)``: called only when the run exists."""

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = self.run()
            if run is None:
                return None
            return function(self.store(), run, *args, **kwargs)

        return wrapper

    @staticmethod
    def findings_lead_in() -> str:
        """``**What the data say.** `` to open a findings paragraph: in the paragraph, so the PDF never leaves it
        alone at a page's foot (a paragraph of its own could end a page, its findings on the next)."""
        return "**" + _("What the data say.") + "** "

    @staticmethod
    def source_line(runs: Sequence[StoredRun]) -> str:
        """``*Source: run `1a2b3c4d` (anncore-baseline, <start time>, cpu).*``, naming every run used."""
        return "*" + _("Source: {runs}.").format(runs="; ".join(run.citation() for run in runs)) + "*"

    def chart(
        self, chart: alt.TopLevelMixin, div_id: str, alt_text: str, runs: Sequence[StoredRun], note: str = ""
    ) -> Outputs:
        """A chart (interactive in HTML, PNG in PDF) with the runs it came from under it."""
        return Outputs(ChartOutput(chart, div_id, alt_text, caption=f"{note}{' ' if note else ''}{self.source_line(runs)}"))

    def table(self, frame: pd.DataFrame, caption: str, runs: Sequence[StoredRun], name: str) -> Markdown:
        """A Markdown table whose caption names the runs it came from, labelled ``tbl-<name>``
        (:func:`reporting.display.markdown_table`)."""
        sources = ", ".join(f"`{run.short_id}`" for run in runs)
        label = ngettext("MLflow run {runs}", "MLflow runs {runs}", len(runs)).format(runs=sources)
        return Markdown(markdown_table(frame, f"{caption} ({label})", name))
