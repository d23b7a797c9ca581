"""Check a DataFrame's columns and embed its rows in the chart spec.

Charts carry their data as inline values so the saved HTML, PNG and SVG need no files or
network, and so Altair's 5,000-row limit on DataFrames does not break large grids.
"""

from __future__ import annotations

from collections.abc import Iterable

import altair as alt
import pandas as pd


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise unless ``df`` is a DataFrame holding every name in ``columns``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table to check.
    columns : iterable of str
        Column names the chart needs.
    what : str
        What the table is (e.g. ``"history"``), for the error message.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    columns = list(columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} is missing columns {missing}; it has {list(df.columns)}, and needs {columns}"
        )
    if df.empty:
        raise ValueError(f"{what} has no rows; a chart needs at least one row with columns {columns}")


def inline_data(df: pd.DataFrame) -> alt.InlineData:
    """The rows of ``df`` as Vega-Lite inline values (NaN becomes null).

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index is dropped.

    Returns
    -------
    altair.InlineData
    """
    clean = alt.utils.sanitize_pandas_dataframe(df.reset_index(drop=True))
    return alt.InlineData(values=clean.to_dict(orient="records"))
