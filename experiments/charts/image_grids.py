"""Pillow image grids: train images per class, and test images with their predictions."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCALE = 3  # 28 px images drawn at 84 px
TILE = 28 * SCALE
PAD = 6
CORRECT, WRONG, TEXT = (0, 110, 40), (190, 20, 20), (20, 20, 20)


def to_uint8(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Undo the normalisation ``(x - mean) / std`` of (N, 1, 28, 28) or (N, 28, 28) images; return uint8 (N, 28, 28)."""
    pixels = np.asarray(images, dtype=np.float32).reshape(len(images), 28, 28) * std + mean
    return np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
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
    """
    font = _font(13)
    caption = 36
    cell_width = max(TILE, 150)
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (columns * (cell_width + PAD) + PAD, rows * (TILE + caption + PAD) + PAD), "white")
    draw = ImageDraw.Draw(canvas)
    for i in range(len(images)):
        left = PAD + (i % columns) * (cell_width + PAD)
        top = PAD + (i // columns) * (TILE + caption + PAD)
        canvas.paste(_tile(images[i]), (left + (cell_width - TILE) // 2, top))
        right = predicted[i] == labels[i]
        draw.text((left, top + TILE + 2), f"true: {class_names[labels[i]]}", fill=TEXT, font=font)
        draw.text(
            (left, top + TILE + 18),
            f"pred: {class_names[predicted[i]]} ({confidence[i]:.2f})",
            fill=CORRECT if right else WRONG,
            font=font,
        )
    return canvas
