"""anncore.data: FashionMNIST through torchvision, checksums, batches, synthetic data."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms

from anncore.data import (
    CLASS_NAMES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    RAW_FILES,
    BatchIterator,
    CorruptDatasetError,
    DatasetNotFoundError,
    TensorData,
    dataset_checksum,
    load_fashion_mnist,
    make_synthetic_classes,
    move_to_device,
)
from tests.idx_files import write_fashion_mnist, write_idx_images

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_idx_labels(path: Path) -> np.ndarray:
    """Independent reader: skip the 8-byte header, one byte per label."""
    return np.frombuffer(path.read_bytes()[8:], dtype=np.uint8).astype(np.int64)


@pytest.fixture
def data_copy(tiny_fashion_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    shutil.copytree(tiny_fashion_root / "FashionMNIST", tmp_path / "FashionMNIST")
    return tmp_path


# --- loading through torchvision -------------------------------------------------------------


@pytest.mark.parametrize("train, n", [(True, 600), (False, 200)])
def test_load_tiny_split_shapes_and_labels(tiny_fashion_root: Path, train: bool, n: int) -> None:
    data = load_fashion_mnist(tiny_fashion_root, train=train, download=False)
    assert data.x.shape == (n, 1, 28, 28) and data.x.dtype == torch.float32
    assert data.y.shape == (n,) and data.y.dtype == torch.int64
    label_file = RAW_FILES[1] if train else RAW_FILES[3]
    expected = read_idx_labels(tiny_fashion_root / "FashionMNIST" / "raw" / label_file)
    np.testing.assert_array_equal(data.y.numpy(), expected)
    assert data.num_classes == 10 and data.class_names == CLASS_NAMES
    assert len(data) == n


def test_normalisation_is_bit_identical_to_the_notebook_transforms(tiny_fashion_root: Path) -> None:
    notebook_transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]
    )
    reference = torchvision.datasets.FashionMNIST(
        tiny_fashion_root, train=False, download=False, transform=notebook_transform
    )
    data = load_fashion_mnist(tiny_fashion_root, train=False, download=False)
    for i in range(0, 200, 7):
        image, label = reference[i]
        assert torch.equal(data.x[i], image), f"sample {i} differs from ToTensor+Normalize"
        assert int(data.y[i]) == label
    assert (FASHION_MNIST_MEAN, FASHION_MNIST_STD) == (0.2860, 0.3530)


def test_class_names_are_the_notebooks() -> None:
    assert CLASS_NAMES == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip


@pytest.mark.skipif(not (SHARED_DATA / "FashionMNIST").is_dir(), reason="shared data not present")
def test_real_shared_subset_matches_its_readme() -> None:
    train = load_fashion_mnist(SHARED_DATA, train=True, download=False)
    test = load_fashion_mnist(SHARED_DATA, train=False, download=False)
    assert (len(train), len(test)) == (8226, 6978)
    assert train.y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    # The README publishes `sha256sum` of the four files; the checksum is over that manifest.
    readme = (SHARED_DATA / "README.md").read_text()
    sums = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})  (\S+)", readme))
    manifest = "".join(f"{sums['FashionMNIST/raw/' + name]}  FashionMNIST/raw/{name}\n" for name in RAW_FILES)
    assert dataset_checksum(SHARED_DATA) == hashlib.sha256(manifest.encode()).hexdigest()


# --- missing and damaged files ---------------------------------------------------------------


def test_missing_dataset_without_download_names_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        load_fashion_mnist(tmp_path / "nowhere", train=True, download=False)
    assert isinstance(error.value, FileNotFoundError)
    message = str(error.value)
    assert "--data-dir" in message and str(tmp_path / "nowhere") in message
    assert "FashionMNIST/raw" in message


def test_missing_dataset_with_failing_download_names_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real download attempt through torchvision, against a port where nothing listens.
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "fresh"
    with pytest.raises(DatasetNotFoundError, match="--data-dir") as error:
        load_fashion_mnist(root, train=True)
    assert "downloading failed" in str(error.value)
    assert not root.exists(), "the folders torchvision created for the download should be removed"


def test_one_missing_file_is_named(data_copy: Path) -> None:
    (data_copy / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(data_copy, train=False, download=False)


def test_truncated_image_file_is_named(data_copy: Path) -> None:
    path = data_copy / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDatasetError, match="truncated") as error:
        load_fashion_mnist(data_copy, train=True, download=False)
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_file_shorter_than_header_is_named(data_copy: Path) -> None:
    path = data_copy / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(CorruptDatasetError, match="t10k-labels-idx1-ubyte.*header"):
        load_fashion_mnist(data_copy, train=False, download=False)


def test_wrong_magic_number_is_named(data_copy: Path) -> None:
    path = data_copy / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    write_idx_images(path, np.zeros((200, 28, 28), np.uint8), magic=2049)
    with pytest.raises(CorruptDatasetError, match="magic number 2049; expected 2051") as error:
        load_fashion_mnist(data_copy, train=False, download=False)
    assert str(path) in str(error.value)


def test_image_and_label_counts_must_agree(data_copy: Path) -> None:
    path = data_copy / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    write_idx_images(path, np.zeros((199, 28, 28), np.uint8))
    with pytest.raises(CorruptDatasetError, match="199 images"):
        load_fashion_mnist(data_copy, train=False, download=False)


@pytest.mark.parametrize(
    "kwargs, error",
    [({"root": 3, "train": True}, TypeError), ({"root": "x", "train": "yes"}, TypeError)],
)
def test_load_rejects_bad_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        load_fashion_mnist(**kwargs)


# --- checksum --------------------------------------------------------------------------------


def test_checksum_is_sha256_of_the_sha256sum_manifest(data_copy: Path) -> None:
    raw = data_copy / "FashionMNIST" / "raw"
    manifest = "".join(
        f"{hashlib.sha256((raw / name).read_bytes()).hexdigest()}  FashionMNIST/raw/{name}\n"
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    )  # fmt: skip
    before = dataset_checksum(data_copy)
    assert before == hashlib.sha256(manifest.encode()).hexdigest()
    labels = raw / "train-labels-idx1-ubyte"
    content = bytearray(labels.read_bytes())
    content[-1] = (content[-1] + 1) % 10
    labels.write_bytes(bytes(content))
    assert dataset_checksum(data_copy) != before


def test_checksum_of_missing_data_names_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="--data-dir"):
        dataset_checksum(tmp_path)


# --- TensorData ------------------------------------------------------------------------------


def numbered_data(n: int) -> TensorData:
    """Sample i has x = [i, -i] and label i % 3, so batches reveal which samples they hold."""
    index = torch.arange(n, dtype=torch.float32)
    return TensorData(torch.stack([index, -index], dim=1), torch.arange(n) % 3)


def test_tensor_data_subset_to_and_defaults() -> None:
    data = numbered_data(10)
    assert data.num_classes == 3 and data.class_names == ("class 0", "class 1", "class 2")
    head = data.subset(4)
    assert len(head) == 4 and head.x[:, 0].tolist() == [0, 1, 2, 3] and head.num_classes == 3
    assert data.to("cpu") is data
    train, test = move_to_device(data, head, "cpu")
    assert train is data and test is head and train.device == torch.device("cpu")


@pytest.mark.parametrize(
    "x, y, error",
    [
        (np.zeros((3, 2)), torch.zeros(3, dtype=torch.int64), TypeError),
        (torch.zeros(3, 2), torch.zeros(3), ValueError),
        (torch.zeros(3, 2), torch.zeros(4, dtype=torch.int64), ValueError),
    ],
)
def test_tensor_data_rejects_bad_tensors(x: object, y: object, error: type) -> None:
    with pytest.raises(error):
        TensorData(x, y)


@pytest.mark.parametrize("n", [0, 11, 2.5, True])
def test_subset_rejects_bad_sizes(n: object) -> None:
    with pytest.raises(ValueError, match="subset size"):
        numbered_data(10).subset(n)


# --- BatchIterator ---------------------------------------------------------------------------


def test_batches_cover_every_sample_once_per_epoch() -> None:
    data = numbered_data(103)
    batches = BatchIterator(data, batch_size=10, shuffle=True, seed=1)
    assert len(batches) == 11
    for _ in range(2):
        seen = [batch for batch in batches]
        assert [len(y) for _, y in seen] == [10] * 10 + [3]
        ids = torch.cat([x[:, 0] for x, _ in seen]).long()
        assert sorted(ids.tolist()) == list(range(103))
        labels = torch.cat([y for _, y in seen])
        assert torch.equal(labels, ids % 3), "x and y must stay paired"


def test_shuffle_is_seeded_and_changes_between_epochs() -> None:
    data = numbered_data(50)

    def orders(seed: int) -> list[list[int]]:
        batches = BatchIterator(data, batch_size=50, seed=seed)
        return [next(iter(batches))[0][:, 0].long().tolist() for _ in range(2)]

    first, again, other = orders(0), orders(0), orders(1)
    assert first == again
    assert first[0] != first[1], "each epoch draws a new permutation"
    assert first != other
    assert first[0] != list(range(50))


def test_no_shuffle_keeps_order_and_max_batches_caps() -> None:
    data = numbered_data(25)
    batches = BatchIterator(data, batch_size=4, shuffle=False, max_batches=3)
    assert len(batches) == 3
    ids = torch.cat([x[:, 0] for x, _ in batches]).long().tolist()
    assert ids == list(range(12))
    assert len(BatchIterator(data, batch_size=4, max_batches=100)) == 7


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -3}, ValueError, "batch_size"),
        ({"batch_size": 1.5}, TypeError, "batch_size"),
        ({"batch_size": 4, "max_batches": 0}, ValueError, "max_batches"),
        ({"batch_size": 4, "seed": "a"}, TypeError, "seed"),
    ],
)
def test_batch_iterator_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BatchIterator(numbered_data(5), **kwargs)


def test_batch_iterator_needs_tensor_data() -> None:
    with pytest.raises(TypeError, match="TensorData"):
        BatchIterator((torch.zeros(3), torch.zeros(3)), batch_size=2)


# --- synthetic data --------------------------------------------------------------------------


def test_synthetic_classes_are_four_blobs_in_the_quadrants() -> None:
    data = make_synthetic_classes(n_per_class=500, seed=0)
    assert data.x.shape == (2000, 2) and data.x.dtype == torch.float32
    assert torch.bincount(data.y).tolist() == [500] * 4 and data.num_classes == 4
    centres = torch.stack([data.x[data.y == k].mean(dim=0) for k in range(4)])
    expected = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
    assert torch.allclose(centres, expected, atol=0.15)
    quadrant_sign = torch.sign(data.x) == torch.sign(expected[data.y])
    assert quadrant_sign.all(dim=1).float().mean() > 0.95


def test_synthetic_classes_are_deterministic() -> None:
    a, b = make_synthetic_classes(50, seed=3), make_synthetic_classes(50, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, make_synthetic_classes(50, seed=4).x)


@pytest.mark.parametrize("n", [0, -1, 2.0])
def test_synthetic_rejects_bad_size(n: object) -> None:
    with pytest.raises((ValueError, TypeError), match="n_per_class"):
        make_synthetic_classes(n)


def test_tiny_root_writer_roundtrips(tmp_path: Path) -> None:
    root = write_fashion_mnist(tmp_path, n_train=30, n_test=20, seed=5)
    assert len(load_fashion_mnist(root, train=True, download=False)) == 30
