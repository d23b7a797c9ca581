"""Datasets as tensors: FashionMNIST (through torchvision) and a synthetic 4-class problem.

Images are normalised once, when loaded, exactly as the notebook's
``ToTensor()`` + ``Normalize((0.2860,), (0.3530,))`` does per sample, and then live as one
float tensor of shape (N, 1, 28, 28). ``BatchIterator`` serves shuffled mini-batches by
slicing those tensors with a seeded index permutation, so no Python code runs per sample.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530

RAW_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
IMAGE_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension
DOWNLOAD_TIMEOUT_S = 5.0

SYNTHETIC_CLASS_NAMES: tuple[str, ...] = ("upper right", "upper left", "lower left", "lower right")
SYNTHETIC_LAYER_SIZES: tuple[int, ...] = (2, 4, 4)


class DatasetNotFoundError(FileNotFoundError):
    """The FashionMNIST raw files are not under the given root and could not be downloaded."""


class CorruptDatasetError(ValueError):
    """A FashionMNIST raw file exists but is not a complete, valid IDX file."""


@dataclass(frozen=True)
class TensorData:
    """Inputs ``x`` and int64 class labels ``y`` held as tensors on one device.

    Parameters
    ----------
    x : torch.Tensor
        Inputs, first dimension the sample index.
    y : torch.Tensor
        Class labels, shape (N,), dtype int64.
    num_classes : int, optional
        Number of classes; defaults to ``len(class_names)`` or else ``max(y) + 1``.
    class_names : tuple of str, optional
        One name per class; defaults to ``"class 0"``, ``"class 1"``, ...
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError(
                f"TensorData needs tensors, got x={type(self.x).__name__}, y={type(self.y).__name__}"
            )
        if self.y.dim() != 1 or self.y.dtype != torch.int64:
            raise ValueError(
                f"y must be a 1-D int64 tensor of labels, got shape {tuple(self.y.shape)} "
                f"and dtype {self.y.dtype}"
            )
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        num_classes = self.num_classes
        if num_classes is None:
            if self.class_names is not None:
                num_classes = len(self.class_names)
            else:
                num_classes = int(self.y.max()) + 1 if len(self.y) else 0
            object.__setattr__(self, "num_classes", num_classes)
        if self.class_names is None:
            names = tuple(f"class {k}" for k in range(num_classes))
            object.__setattr__(self, "class_names", names)
        elif len(self.class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names for {num_classes} classes"
            )

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.x.device

    def to(self, device: torch.device | str) -> TensorData:
        """Return the data on ``device`` (the same object if it is already there)."""
        device = torch.device(device)
        if self.x.device == device and self.y.device == device:
            return self
        return TensorData(self.x.to(device), self.y.to(device), self.num_classes, self.class_names)

    def subset(self, n: int) -> TensorData:
        """Return the first ``n`` samples (views, no copy)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(self):
            raise ValueError(f"subset size must be an integer in [1, {len(self)}], got {n!r}")
        return TensorData(self.x[:n], self.y[:n], self.num_classes, self.class_names)


def move_to_device(
    train_data: TensorData, test_data: TensorData, device: torch.device | str
) -> tuple[TensorData, TensorData]:
    """Move a train/test pair to ``device`` once; data already there is not copied."""
    return train_data.to(device), test_data.to(device)


def _raw_folder(root: str | os.PathLike) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def _not_found(root: Path, missing: Sequence[str], reason: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"FashionMNIST not found under data root '{root}' (missing: {', '.join(missing)}); "
        f"{reason}. Pass --data-dir pointing at a folder that contains "
        f"FashionMNIST/raw/{{{','.join(RAW_FILES)}}}."
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Give socket operations (torchvision's download) a timeout, so no network fails fast."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download(root: Path, missing: Sequence[str]) -> None:
    """Try torchvision's download; on failure remove the empty folders it made and explain."""
    created = [p for p in (root, root / "FashionMNIST", _raw_folder(root)) if not p.exists()]
    import torchvision  # here, not at the top: importing it costs about a second (its ops load torch._dynamo)

    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            torchvision.datasets.FashionMNIST(root, train=True, download=True)
    except (OSError, RuntimeError) as error:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        raise _not_found(root, missing, f"downloading failed ({first_line})") from error


def _check_idx_file(path: Path, magic: int) -> int:
    """Check an IDX file's magic number and size; return its item count."""
    dims = 3 if magic == IMAGE_MAGIC else 1
    header_size = 4 * (1 + dims)
    size = path.stat().st_size
    if size < header_size:
        raise CorruptDatasetError(
            f"'{path}' is truncated: {size} bytes, shorter than the {header_size}-byte IDX header"
        )
    with path.open("rb") as f:
        header = struct.unpack(f">{1 + dims}i", f.read(header_size))
    if header[0] != magic:
        raise CorruptDatasetError(
            f"'{path}' has IDX magic number {header[0]}; expected {magic} "
            f"({'images' if magic == IMAGE_MAGIC else 'labels'}, unsigned bytes)"
        )
    count, shape = header[1], header[2:]
    if magic == IMAGE_MAGIC and tuple(shape) != (28, 28):
        raise CorruptDatasetError(f"'{path}' holds {shape[0]}x{shape[1]} images; expected 28x28")
    expected = header_size + count * (784 if magic == IMAGE_MAGIC else 1)
    if size != expected:
        raise CorruptDatasetError(
            f"'{path}' is truncated or padded: {size} bytes, but its header promises "
            f"{count} items ({expected} bytes)"
        )
    return count


def _check_split(raw: Path, train: bool) -> None:
    images, labels = RAW_FILES[:2] if train else RAW_FILES[2:]
    n_images = _check_idx_file(raw / images, IMAGE_MAGIC)
    n_labels = _check_idx_file(raw / labels, LABEL_MAGIC)
    if n_images != n_labels:
        raise CorruptDatasetError(
            f"'{raw / images}' holds {n_images} images but '{raw / labels}' {n_labels} labels"
        )


def load_fashion_mnist(root: str | os.PathLike, train: bool, download: bool = True) -> TensorData:
    """Load a FashionMNIST split through torchvision and normalise it once.

    Parameters
    ----------
    root : str or path
        Folder holding ``FashionMNIST/raw/`` (torchvision's layout).
    train : bool
        True for the training split, False for the test split.
    download : bool, default True
        Let torchvision download missing files. Without a network this fails within a few
        seconds with ``DatasetNotFoundError``.

    Returns
    -------
    TensorData
        ``x`` float32 of shape (N, 1, 28, 28), ``(x / 255 - 0.2860) / 0.3530`` bit for bit as the
        notebook's transforms compute it; ``y`` int64 of shape (N,); the 10 class names.

    Raises
    ------
    DatasetNotFoundError
        A raw file is missing and could not be downloaded; the message names ``--data-dir``.
    CorruptDatasetError
        A raw file is truncated or has the wrong IDX magic number; the message names the file.
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
    if not isinstance(train, bool) or not isinstance(download, bool):
        raise TypeError(f"train and download must be bool, got train={train!r}, download={download!r}")
    root = Path(root)
    raw = _raw_folder(root)
    missing = [name for name in RAW_FILES if not (raw / name).is_file()]
    if missing and download:
        _download(root, missing)
    elif missing:
        raise _not_found(root, missing, "download is off")
    _check_split(raw, train)

    import torchvision  # only the commands that read FashionMNIST pay for importing it

    dataset = torchvision.datasets.FashionMNIST(root, train=train, download=False)
    mean = torch.tensor(FASHION_MNIST_MEAN, dtype=torch.float32)
    std = torch.tensor(FASHION_MNIST_STD, dtype=torch.float32)
    x = dataset.data.to(torch.float32).div_(255).sub_(mean).div_(std).unsqueeze(1)
    y = dataset.targets.to(torch.int64)
    return TensorData(x, y, num_classes=len(CLASS_NAMES), class_names=CLASS_NAMES)


def dataset_checksum(root: str | os.PathLike) -> str:
    """Return a sha256 identifying the four raw FashionMNIST files under ``root``.

    It is the sha256 of the manifest ``sha256sum`` prints for the files, in the order of
    ``RAW_FILES``: one line ``<hex digest>  FashionMNIST/raw/<name>`` per file.
    """
    raw = _raw_folder(root)
    missing = [name for name in RAW_FILES if not (raw / name).is_file()]
    if missing:
        raise _not_found(Path(root), missing, "cannot compute its checksum")
    lines = []
    for name in RAW_FILES:
        digest = hashlib.sha256((raw / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  FashionMNIST/raw/{name}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return value


def _seeded_generator(seed: object) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    return torch.Generator().manual_seed(seed)


class BatchIterator:
    """Mini-batches of a ``TensorData``, shuffled by a seeded index permutation.

    Each pass (epoch) draws a new permutation from one ``torch.Generator`` seeded once, so a
    sequence of epochs is reproducible from ``seed``. Batches are slices of the tensors on
    their device; the last batch may be smaller.

    Parameters
    ----------
    data : TensorData
        The samples.
    batch_size : int
        Samples per batch (>= 1).
    shuffle : bool, default True
        Permute the samples every pass.
    seed : int, default 0
        Seed of the permutation generator.
    max_batches : int, optional
        Stop each pass after this many batches (quick runs).
    """

    def __init__(
        self,
        data: TensorData,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> None:
        if not isinstance(data, TensorData):
            raise TypeError(f"data must be a TensorData, got {type(data).__name__}")
        self.data = data
        self.batch_size = _positive_int("batch_size", batch_size)
        self.max_batches = None if max_batches is None else _positive_int("max_batches", max_batches)
        self.generator = _seeded_generator(seed)
        self.shuffle = bool(shuffle)

    def __len__(self) -> int:
        n_batches = -(-len(self.data) // self.batch_size)
        return n_batches if self.max_batches is None else min(n_batches, self.max_batches)

    def epoch_order(self) -> torch.Tensor:
        """The next pass's sample order on the data's device (draws from the generator once).

        What :meth:`__iter__` slices its batches from; the captured training step
        (``anncore.cuda_graph_step``) takes its batches from it too, so both see the same samples.
        """
        return torch.randperm(len(self.data), generator=self.generator).to(self.data.x.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.data.x, self.data.y
        n_batches = len(self)
        if self.shuffle:
            order = self.epoch_order()
            for i in range(n_batches):
                index = order[i * self.batch_size : (i + 1) * self.batch_size]
                yield x.index_select(0, index), y.index_select(0, index)
        else:
            for i in range(n_batches):
                batch = slice(i * self.batch_size, (i + 1) * self.batch_size)
                yield x[batch], y[batch]


def make_synthetic_classes(n_per_class: int = 100, seed: int = 0) -> TensorData:
    """A deterministic 4-class, 2-D dataset for the notebook's TO-DO 3.2.

    Four Gaussian blobs (standard deviation 0.75) centred at (2, 2), (-2, 2), (-2, -2) and
    (2, -2): class ``k`` is the ``k``-th quadrant counter-clockwise from the upper right. The
    classes are separable up to about 1 % overlap.

    The notebook asks for a "2-4-1" model on this 4-class problem. One output cannot carry four
    classes under cross-entropy, so the architecture is realised as ``SYNTHETIC_LAYER_SIZES``
    = (2, 4, 4): 2 inputs, the notebook's hidden layer of 4, and 4 outputs (one logit per
    class) trained with cross-entropy.

    Parameters
    ----------
    n_per_class : int, default 100
        Samples per class.
    seed : int, default 0
        Seed of the noise.

    Returns
    -------
    TensorData
        ``x`` float32 (4 * n_per_class, 2), ``y`` int64, grouped by class.
    """
    _positive_int("n_per_class", n_per_class)
    generator = _seeded_generator(seed)
    centres = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
    y = torch.arange(4).repeat_interleave(n_per_class)
    x = centres[y] + 0.75 * torch.randn(len(y), 2, generator=generator)
    return TensorData(x, y, num_classes=4, class_names=SYNTHETIC_CLASS_NAMES)
