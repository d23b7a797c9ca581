"""What one invocation of the suite was asked to do, shared by every experiment it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# --quick: a slice of the data, a few batches per epoch and few epochs, for smoke tests.
QUICK_TRAIN_SIZE = 512
QUICK_TEST_SIZE = 256
QUICK_MAX_BATCHES = 4
QUICK_EPOCHS = 2
QUICK_SYNTHETIC_EPOCHS = 20


@dataclass(frozen=True)
class RunSettings:
    """Options of one ``run``/``rerun`` command, already validated by the command line.

    Attributes
    ----------
    epochs : int or None
        Epochs for every training experiment; None means each experiment's own default
        (the notebook's), capped at ``QUICK_EPOCHS`` with ``quick``.
    seeds : tuple of int
        Studies run every arm once per seed; single runs use the first seed.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    data_dir : Path
        Root holding ``FashionMNIST/raw``.
    download : bool
        Download FashionMNIST when missing (only for the default ``./data``).
    quick : bool
        Smoke-test sizes (see the ``QUICK_*`` constants).
    progress : bool
        Show progress bars.
    hidden_sizes, dropout, learning_rate, activation
        The ``custom`` experiment's architecture and optimiser settings.
    target_accuracy : float
        Test accuracy that ``activation_study`` counts epochs to.
    arms : tuple of str or None
        Restrict a study to these arms (``rerun`` of one child run).
    rerun_of : str or None
        Run id that this invocation reruns; tagged as ``anncore.rerun_of``.
    project_run_id : str or None
        The run ``mlflow run`` created for this command (an MLflow Project entry point);
        tagged as ``anncore.project_run_id``.
    """

    epochs: int | None = None
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    data_dir: Path = field(default_factory=lambda: Path("data"))
    download: bool = True
    quick: bool = False
    progress: bool = True
    hidden_sizes: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    learning_rate: float = 1e-3
    activation: str = "relu"
    target_accuracy: float = 0.80
    arms: tuple[str, ...] | None = None
    rerun_of: str | None = None
    project_run_id: str | None = None

    @property
    def seed(self) -> int:
        """The seed of single (non-study) runs: the first of ``seeds``."""
        return self.seeds[0]

    def epochs_or(self, default: int, quick_default: int = QUICK_EPOCHS) -> int:
        """Return the epochs to train: ``--epochs`` if given, else ``default`` (``quick_default`` with ``quick``)."""
        if self.epochs is not None:
            return self.epochs
        return min(default, quick_default) if self.quick else default

    @property
    def max_batches(self) -> int | None:
        """Batches per training epoch: ``QUICK_MAX_BATCHES`` with ``quick``, else all."""
        return QUICK_MAX_BATCHES if self.quick else None
