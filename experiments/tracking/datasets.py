"""FashionMNIST for the experiments: loaded once per process, sliced for ``--quick``, described for MLflow."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from experiments.settings import QUICK_TEST_SIZE, QUICK_TRAIN_SIZE, RunSettings, UserInputError
from experiments.tracking.provenance import display_path
from experiments.tracking.store import is_dataset_insert_race, with_retry

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput

    from anncore.data import TensorData

DATASET_NAME = "FashionMNIST"


@dataclass(frozen=True)
class FashionMNIST:
    """The train and test splits an experiment trains on, with what identifies them.

    Attributes
    ----------
    train, test : anncore.data.TensorData
        Normalised images (N, 1, 28, 28) and labels, on the CPU.
    sha256 : str
        ``anncore.data.dataset_checksum`` of the raw files they were read from.
    source : str
        The data folder, relative to the cwd or with ``~`` for the home folder.
    """

    train: TensorData
    test: TensorData
    sha256: str
    source: str

    def params(self) -> dict[str, object]:
        """The dataset's MLflow params: name, split sizes and checksum."""
        return {
            "dataset": DATASET_NAME,
            "dataset_train_size": len(self.train),
            "dataset_test_size": len(self.test),
            "dataset_sha256": self.sha256,
        }


_CACHE: dict[tuple[Path, bool, bool], FashionMNIST] = {}


def load(settings: RunSettings) -> FashionMNIST:
    """Load FashionMNIST from ``settings.data_dir`` (cached per process), sliced with ``quick``.

    Raises
    ------
    UserInputError
        The files are missing (the message names ``--data-dir``) or corrupt.
    """
    from anncore.data import CorruptDatasetError, DatasetNotFoundError, dataset_checksum, load_fashion_mnist

    root = Path(settings.data_dir).expanduser().resolve()
    key = (root, settings.download, settings.quick)
    if key not in _CACHE:
        try:
            train = load_fashion_mnist(root, train=True, download=settings.download)
            test = load_fashion_mnist(root, train=False, download=settings.download)
            sha256 = dataset_checksum(root)
        except DatasetNotFoundError as error:
            raise UserInputError(str(error)) from None
        except CorruptDatasetError as error:
            raise UserInputError(
                f"{error}; accepted: the four FashionMNIST IDX files, complete and unmodified "
                "(copy or download them again)"
            ) from None
        if settings.quick:
            train = train.subset(min(QUICK_TRAIN_SIZE, len(train)))
            test = test.subset(min(QUICK_TEST_SIZE, len(test)))
        _CACHE[key] = FashionMNIST(train, test, sha256, display_path(root))
    return _CACHE[key]


@contextmanager
def _quiet_descriptor_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        # MLflow registers two equivalent local-file sources and warns that it picked one; and it
        # hints that integer columns cannot hold missing values. Neither applies to a descriptor.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        yield


def _descriptor(data: FashionMNIST):
    """The dataset as MLflow sees it: a small descriptor with the real checksum and source."""
    import mlflow
    import pandas as pd

    descriptor = pd.DataFrame(
        {"split": ["train", "test"], "samples": [len(data.train), len(data.test)], "sha256": [data.sha256] * 2}
    )
    with _quiet_descriptor_warnings():
        return mlflow.data.from_pandas(descriptor, source=data.source, name=DATASET_NAME, digest=data.sha256[:36])


def log_input(data: FashionMNIST) -> None:
    """Log the dataset as the active run's input: a small descriptor with the real checksum and source.

    MLflow stores at most 36 characters of digest, so the digest is the checksum's first 36
    hex digits; the full sha256 is the ``dataset_sha256`` param.
    """
    import mlflow

    with _quiet_descriptor_warnings():
        _log_inputs(mlflow.log_input, _descriptor(data), context="training")


def dataset_input(data: FashionMNIST) -> DatasetInput:
    """What :func:`log_input` logs, as one entity for :func:`log_input_to` (made once for many runs)."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    with _quiet_descriptor_warnings():  # the schema is inferred here
        # Dataset._to_mlflow_entity is how mlflow.log_input itself makes the entity.
        entity = _descriptor(data)._to_mlflow_entity()
    return DatasetInput(dataset=entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])


def log_input_to(run_id: str, entity: DatasetInput) -> None:
    """Log the dataset ``entity`` (:func:`dataset_input`) as an input of ``run_id``, which need not be active."""
    import mlflow

    _log_inputs(mlflow.MlflowClient().log_inputs, run_id, datasets=[entity])


def _log_inputs(log: Callable[..., None], *args: object, **kwargs: object) -> None:
    """``log(*args, **kwargs)`` through :func:`with_retry`, once more if another process inserted the dataset first.

    Why: two suites logging to one store (a class server, or two shells on ./mlruns) each
    insert the dataset the first time an experiment sees it; the second attempt finds the row
    the first process committed and only links this run to it.
    """
    try:
        with_retry(log, *args, **kwargs)
    except Exception as error:
        if not is_dataset_insert_race(error):
            raise
        with_retry(log, *args, **kwargs)
