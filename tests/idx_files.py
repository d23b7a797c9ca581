"""Write tiny but valid FashionMNIST IDX files, in torchvision's folder layout, for tests.

The images are learnable on purpose: class ``k`` lights a band of rows around ``2 + 2.4 k``, on
top of seeded noise, so a short training run has something real to find.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return uint8 images of shape (N, 28, 28) whose bright band encodes the label."""
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        row = int(2 + 2.4 * label)
        images[i, row : row + 3, 4:24] = 200
    return images


def write_idx_images(path: Path, images: np.ndarray, magic: int = IMAGE_MAGIC) -> None:
    """Write an IDX3 image file: magic, N, rows, cols (big-endian int32), then the bytes."""
    n, rows, cols = images.shape
    path.write_bytes(struct.pack(">iiii", magic, n, rows, cols) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray, magic: int = LABEL_MAGIC) -> None:
    """Write an IDX1 label file: magic, N (big-endian int32), then one byte per label."""
    path.write_bytes(struct.pack(">ii", magic, len(labels)) + labels.astype(np.uint8).tobytes())


def write_fashion_mnist(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write train and test IDX files under ``root/FashionMNIST/raw`` and return ``root``."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for train, n in ((True, n_train), (False, n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        image_file, label_file = FILES[train]
        write_idx_images(raw / image_file, make_images(labels, rng))
        write_idx_labels(raw / label_file, labels)
    return Path(root)
