"""An x axis for epoch numbers: whole epochs only, never 1.5."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt

MAX_LABELLED_EPOCHS = 20


def epoch_axis(epochs: Sequence[int]) -> alt.Axis:
    """Ticks at each epoch when there are few, else whole-number ticks chosen by Vega.

    Parameters
    ----------
    epochs : sequence of int
        The distinct epochs in the data, sorted.

    Returns
    -------
    altair.Axis
    """
    if len(epochs) <= MAX_LABELLED_EPOCHS:
        return alt.Axis(values=[int(e) for e in epochs], format="d")
    return alt.Axis(tickMinStep=1, format="d")
