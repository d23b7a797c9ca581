"""Log tables, JSON, charts and images as artifacts of the active MLflow run.

Every call is retried while a shared SQLite store is locked; files are staged in a temporary
folder that is removed afterwards.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from experiments.tracking.store import with_retry


def _log_file(write: Callable[[Path], object], artifact_file: str) -> None:
    """Write ``artifact_file`` with ``write(path)`` in a temp folder and log it at the same relative path."""
    import mlflow

    relative = Path(artifact_file)
    with tempfile.TemporaryDirectory(prefix="anncore-artifact-") as folder:
        path = Path(folder) / relative.name
        write(path)
        with_retry(mlflow.log_artifact, str(path), str(relative.parent) if relative.parent != Path(".") else None)


def log_csv(table, artifact_file: str, index: bool = False) -> None:
    """Log a pandas DataFrame as a CSV artifact (no index column unless ``index``)."""
    _log_file(lambda path: table.to_csv(path, index=index), artifact_file)


def log_json(value: object, artifact_file: str) -> None:
    """Log a JSON-serialisable value as an indented JSON artifact."""
    _log_file(lambda path: path.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n"), artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    """Log a string as a text artifact."""
    _log_file(lambda path: path.write_text(text), artifact_file)


def log_image(image, artifact_file: str) -> None:
    """Log a Pillow image as a PNG artifact."""
    _log_file(lambda path: image.save(path, format="PNG"), artifact_file)


def log_chart_html(chart, artifact_file: str) -> None:
    """Log an Altair chart as a standalone HTML page that works offline."""
    from experiments.charts.export import save_html

    _log_file(lambda path: save_html(chart, path), artifact_file)


def log_chart_png(chart, artifact_file: str) -> None:
    """Log an Altair chart as a PNG image."""
    from experiments.charts.export import save_png

    _log_file(lambda path: save_png(chart, path), artifact_file)


def log_chart(chart, stem: str) -> None:
    """Log an Altair chart as ``<stem>.html`` and ``<stem>.png``."""
    log_chart_html(chart, f"{stem}.html")
    log_chart_png(chart, f"{stem}.png")
