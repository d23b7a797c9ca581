"""Pillow image grids: train images per class, and test images with their predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from experiments.charts.i18n import N_, translator

SCALE = 3  # 28 px images drawn at 84 px
TILE = 28 * SCALE
PAD = 6
CORRECT, WRONG, TEXT = (0, 110, 40), (190, 20, 20), (20, 20, 20)
# The prediction grid's layout: caption height under each image, and cell width.
CAPTION_PX, CELL_WIDTH = 36, max(TILE, 176)
# The captions, as the course notebook writes them («Истина:», «Предск.:» in Russian).
TRUE_CAPTION, PREDICTED_CAPTION = N_("true: {name}"), N_("pred: {name} ({confidence})")


def to_uint8(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Undo the normalisation ``(x - mean) / std`` of (N, 1, 28, 28) or (N, 28, 28) images; return uint8 (N, 28, 28)."""
    pixels = np.asarray(images, dtype=np.float32).reshape(len(images), 28, 28) * std + mean
    return np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (Latin and Cyrillic; matplotlib, which MLflow requires, ships it), else Pillow's own."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def _tile(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image, mode="L").resize((TILE, TILE), Image.Resampling.NEAREST).convert("RGB")


def class_samples_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], per_class: int = 6) -> Image.Image:
    """One row per class with its first ``per_class`` images, the class name on the left.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, 28, 28).
    labels : numpy.ndarray
        int (N,) class indices.
    class_names : sequence of str
    per_class : int
        Images per row; classes with fewer images leave blanks.
    """
    font = _font(14)
    label_width = 110
    width = label_width + per_class * (TILE + PAD) + PAD
    height = len(class_names) * (TILE + PAD) + PAD
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for row, name in enumerate(class_names):
        top = PAD + row * (TILE + PAD)
        draw.text((PAD, top + TILE // 2), name, fill=TEXT, font=font, anchor="lm")
        for col, index in enumerate(np.flatnonzero(labels == row)[:per_class]):
            canvas.paste(_tile(images[index]), (label_width + col * (TILE + PAD), top))
    return canvas


def predictions_grid(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    class_names: Sequence[str],
    columns: int = 4,
    language: str = "en",
) -> Image.Image:
    """Images with "true", "pred (confidence)" captions; the prediction green if right, red if wrong.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, 28, 28).
    labels, predicted : numpy.ndarray
        int (N,) true and predicted classes.
    confidence : numpy.ndarray
        float (N,) probability of the predicted class.
    class_names : sequence of str
    columns : int
        Images per row.
    language : str
        The captions' language (a ``charts`` catalogue; ``"ru"`` writes a decimal comma).
    """
    _ = translator(language)
    font = _font(12)
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (columns * (CELL_WIDTH + PAD) + PAD, rows * (TILE + CAPTION_PX + PAD) + PAD), "white")
    draw = ImageDraw.Draw(canvas)
    for i in range(len(images)):
        left, top = _cell_origin(i, columns)
        canvas.paste(_tile(images[i]), (left + (CELL_WIDTH - TILE) // 2, top))
        right = predicted[i] == labels[i]
        share = f"{confidence[i]:.2f}".replace(".", "," if language == "ru" else ".")
        draw.text((left, top + TILE + 2), _(TRUE_CAPTION).format(name=class_names[labels[i]]), fill=TEXT, font=font)
        draw.text(
            (left, top + TILE + 18),
            _(PREDICTED_CAPTION).format(name=class_names[predicted[i]], confidence=share),
            fill=CORRECT if right else WRONG,
            font=font,
        )
    return canvas


def _cell_origin(index: int, columns: int, cell_width: int = CELL_WIDTH) -> tuple[int, int]:
    """Top-left corner of the ``index``-th cell of a :func:`predictions_grid`."""
    return PAD + (index % columns) * (cell_width + PAD), PAD + (index // columns) * (TILE + CAPTION_PX + PAD)


def predictions_grid_images(grid: Image.Image, count: int, columns: int = 4) -> np.ndarray:
    """The ``count`` 28x28 uint8 images a :func:`predictions_grid` was drawn from, cut back out of it.

    The tiles are the images enlarged :data:`SCALE` times by nearest neighbour and stored
    losslessly (PNG), so every third pixel is the original one. This lets a report redraw a
    logged grid with captions in another language without the dataset. The cell width is read
    from the grid's width (older grids had narrower cells).
    """
    gray = np.asarray(grid.convert("L"))
    cell_width = (gray.shape[1] - PAD) // columns - PAD
    images = []
    for i in range(count):
        left, top = _cell_origin(i, columns, cell_width)
        left += (cell_width - TILE) // 2
        images.append(gray[top : top + TILE : SCALE, left : left + TILE : SCALE])
    return np.stack(images).astype(np.uint8)
