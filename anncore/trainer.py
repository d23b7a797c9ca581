"""Training and evaluation: the notebook's ``train_model``, done properly.

The loop has the shape of pytorch/examples' mnist (``train_one_epoch`` then ``evaluate`` per
epoch) and is written for speed: data stays on the device as tensors, loss and correct
counts are summed on the device and read once per epoch (no ``.item()`` per batch), gradients
are dropped with ``zero_grad(set_to_none=True)``, Adam uses its fused step where the device
supports it, and evaluation runs under ``torch.inference_mode()`` in large batches.

A non-finite loss is detected without a per-batch sync: each batch's loss is kept on the device
and, if the epoch's total is not finite, the first bad batch is located from them.
"""

from __future__ import annotations

import math
import numbers
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # plain text bars: tqdm.auto warns in Jupyter kernels without ipywidgets

from anncore.cuda_graph_step import BatchPlan, CapturedEpochs, uses_cuda_graphs
from anncore.data import BatchIterator, TensorData, move_to_device

OPTIMIZERS = ("adam", "sgd")
DEVICE_CHOICES = "'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'"
PROGRESS_EVERY = 25  # batches between progress-bar loss updates (each one syncs the device)

Callback = Callable[[int, dict, nn.Module], None]
RUN_OPTION = {"run_option": True}  # TrainConfig metadata: not a hyperparameter of the model


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite.

    Attributes
    ----------
    epoch : int
        1-based epoch in which it happened.
    batch : int
        1-based index of the first batch whose loss was not finite.
    loss : float
        That batch's loss.
    """

    def __init__(self, epoch: int, batch: int, loss: float) -> None:
        self.epoch, self.batch, self.loss = epoch, batch, loss
        super().__init__(
            f"training loss became {loss} at epoch {epoch}, batch {batch}; "
            f"try a smaller learning rate"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and run options of :func:`train`, checked when created.

    Parameters
    ----------
    epochs : int, default 5
        Passes over the training data (>= 1).
    batch_size : int, default 128
        Training mini-batch size (>= 1).
    learning_rate : float, default 1e-3
        Step size (> 0).
    optimizer : {"adam", "sgd"}, default "adam"
        Adam, or SGD with ``momentum``.
    momentum : float, default 0.9
        SGD momentum in [0, 1); ignored by Adam.
    seed : int, default 0
        Seeds torch, NumPy and ``random`` at the start of training, and the batch order.
    device : str, default "auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:<index>" or "mps".
    progress : bool, default True
        Show a tqdm progress bar with epoch, batch and running loss.
    max_batches : int, optional
        Stop each epoch after this many training batches (quick runs).
    eval_batch_size : int, default 1024
        Batch size of evaluation (no gradients, so larger is faster).
    track_grad_norms : bool, default False
        Record, per epoch, the mean L2 norm of each linear layer's weight gradient.
    cuda_graphs : bool, default True
        On CUDA with Adam, run each full-size batch through one captured CUDA graph
        (``anncore.cuda_graph_step``); same samples, order and optimizer as the eager loop.
        Ignored on the CPU and MPS.
    """

    # The hyperparameters: what a logged run records about how its model was trained. A field
    # added here is logged by every experiment (see ``hyperparameters``); run options, which do
    # not change the trained model or are recorded elsewhere, are marked ``RUN_OPTION``.
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = field(default=0.9, metadata={"only_for_optimizer": "sgd"})
    seed: int = field(default=0, metadata=RUN_OPTION)  # logged with every run's common params
    device: str = field(default="auto", metadata=RUN_OPTION)
    progress: bool = field(default=True, metadata=RUN_OPTION)
    max_batches: int | None = field(default=None, metadata=RUN_OPTION)
    eval_batch_size: int = field(default=1024, metadata=RUN_OPTION)
    track_grad_norms: bool = field(default=False, metadata=RUN_OPTION)
    cuda_graphs: bool = field(default=True, metadata=RUN_OPTION)

    def hyperparameters(self) -> dict[str, object]:
        """The fields that define how the model is trained, by name (run options left out).

        A field that only one optimizer reads (``momentum``: SGD) is left out for the others.
        """
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.metadata.get("run_option")
            and f.metadata.get("only_for_optimizer", self.optimizer) == self.optimizer
        }

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.max_batches is not None and (not _is_int(self.max_batches) or self.max_batches < 1):
            raise ValueError(f"max_batches must be None or an integer >= 1, got {self.max_batches!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (0 < lr < math.inf):
            raise ValueError(f"learning_rate must be a finite number > 0, got {lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; accepted: {list(OPTIMIZERS)}")
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not 0 <= m < 1:
            raise ValueError(f"momentum must be a number in [0, 1), got {m!r}")
        if not isinstance(self.cuda_graphs, bool):
            raise TypeError(f"cuda_graphs must be True or False, got {self.cuda_graphs!r}")
        if not _is_int(self.seed):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"device must be a string, one of {DEVICE_CHOICES}; got {self.device!r}")
        resolve_device(self.device, check_available=False)


@dataclass
class Evaluation:
    """A model's results on one dataset.

    Attributes
    ----------
    loss : float
        Mean cross-entropy per sample.
    accuracy : float
        Fraction of samples classified correctly, in [0, 1].
    per_class_accuracy : pandas.DataFrame
        ``class_index``, ``class_name``, ``correct``, ``total``, ``accuracy``.
    confusion_matrix : numpy.ndarray
        int64 (C, C): rows are true classes, columns predicted classes.
    probabilities : numpy.ndarray
        float32 (N, C) softmax probabilities.
    predictions : numpy.ndarray
        int64 (N,) predicted classes.
    labels : numpy.ndarray
        int64 (N,) true classes.
    """

    loss: float
    accuracy: float
    per_class_accuracy: pd.DataFrame
    confusion_matrix: np.ndarray
    probabilities: np.ndarray = field(repr=False)
    predictions: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)


@dataclass
class TrainResult:
    """What :func:`train` returns: the per-epoch ``history``, the trained ``model`` and the
    final ``evaluation`` on the test data."""

    history: pd.DataFrame
    model: nn.Module
    evaluation: Evaluation


def resolve_device(device: str | torch.device = "auto", check_available: bool = True) -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:1", "mps" into a ``torch.device``.

    "auto" is CUDA when available, else CPU. With ``check_available``, asking for a device
    this machine lacks raises ``ValueError``.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"unknown device {device!r}; accepted: {DEVICE_CHOICES}") from error
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}; accepted: {DEVICE_CHOICES}")
    if check_available and resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    if check_available and resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available; use 'auto' or 'cpu'")
    return resolved


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    if not _is_int(seed):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device, capturable: bool = False
) -> torch.optim.Optimizer:
    """Adam (fused step where the device supports it) or SGD with momentum.

    ``capturable`` (CUDA, Adam): the step count lives on the device, so a CUDA graph can
    capture the step (``anncore.cuda_graph_step``).
    """
    params = list(model.parameters())
    fused = device.type in ("cpu", "cuda", "mps")
    if config.optimizer == "adam":
        if capturable:
            return torch.optim.Adam(params, lr=config.learning_rate, fused=True, capturable=True)
        return torch.optim.Adam(params, lr=config.learning_rate, fused=fused)
    return torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum, fused=fused)


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    if hasattr(model, "linear_layers"):
        return list(model.linear_layers())
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


def train_one_epoch(
    model: nn.Module,
    batches: BatchIterator,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    progress: bool = False,
    grad_norm_layers: Sequence[nn.Linear] = (),
    description: str = "",
) -> dict[str, float]:
    """Train ``model`` for one pass over ``batches`` with cross-entropy.

    Returns
    -------
    dict
        ``train_loss`` (mean per sample), ``train_acc`` (fraction correct), ``samples``, and with
        ``grad_norm_layers`` one ``grad_norm/layer<k>`` per layer (mean over batches).

    Raises
    ------
    NonFiniteLossError
        If any batch's loss was NaN or infinite (checked once, at the end of the epoch).
    """
    model.train()
    device = batches.data.device
    batch_losses: list[torch.Tensor] = []
    batch_sizes: list[int] = []
    correct = torch.zeros((), dtype=torch.int64, device=device)
    grad_norm_sum = torch.zeros(len(grad_norm_layers), device=device)
    # disable=None: no bar where stderr is not a terminal (a log file or CI would get one partial
    # bar line per refresh); the epoch lines below still go there.
    bar = tqdm(total=len(batches), desc=description, disable=None if progress else True, leave=False, unit="batch")
    for x, y in batches:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_norm_layers:
            grad_norm_sum += torch.stack(
                [torch.linalg.vector_norm(layer.weight.grad) for layer in grad_norm_layers]
            )
        optimizer.step()

        batch_losses.append(loss.detach())
        batch_sizes.append(len(y))
        correct += (logits.detach().argmax(dim=1) == y).sum()
        if progress:
            bar.update()
            if len(batch_losses) % PROGRESS_EVERY == 0:
                recent = torch.stack(batch_losses[-PROGRESS_EVERY:]).mean().item()
                bar.set_postfix(loss=f"{recent:.4f}")
                if not math.isfinite(recent):
                    break  # this read synced anyway; the check below names the batch
    bar.close()
    return _epoch_summary(epoch, torch.stack(batch_losses), batch_sizes, correct, grad_norm_sum)


def train_captured_epoch(
    captured: CapturedEpochs,
    batches: BatchIterator,
    epoch: int,
    progress: bool = False,
    description: str = "",
) -> dict[str, float]:
    """:func:`train_one_epoch` through a captured step: the same samples, order and row.

    The progress bar counts batches but shows no running loss (reading it would sync the
    device every ``PROGRESS_EVERY`` batches, which the graph exists to avoid).
    """
    bar = tqdm(total=len(batches), desc=description, disable=None if progress else True, leave=False, unit="batch")
    losses, sizes, correct, grad_norm_sum = captured.run(batches.epoch_order(), bar if progress else None)
    bar.close()
    return _epoch_summary(epoch, losses, sizes, correct, grad_norm_sum)


def _epoch_summary(
    epoch: int,
    losses: torch.Tensor,
    batch_sizes: list[int],
    correct: torch.Tensor,
    grad_norm_sum: torch.Tensor,
) -> dict:
    """Turn an epoch's on-device sums into its row, with one host read; raise on a non-finite loss.

    ``losses`` holds each batch's mean loss (1-D, on the device), ``batch_sizes`` their sizes.
    """
    sizes = torch.tensor(batch_sizes, dtype=losses.dtype, device=losses.device)
    loss_sum = (losses * sizes).sum()
    # The epoch's single host read: loss total, correct count and gradient norms together.
    loss_total, n_correct, *norm_sums = torch.cat(
        [loss_sum.reshape(1), correct.to(losses.dtype).reshape(1), grad_norm_sum.to(losses.dtype)]
    ).tolist()
    if not math.isfinite(loss_total):
        non_finite = torch.nonzero(~torch.isfinite(losses)).flatten()
        # Finite losses can still overflow the float32 sum; then blame the largest.
        bad = int(non_finite[0]) if len(non_finite) else int(losses.argmax())
        raise NonFiniteLossError(epoch, bad + 1, float(losses[bad]))
    n_samples = sum(batch_sizes)
    row = {"train_loss": loss_total / n_samples, "train_acc": n_correct / n_samples, "samples": n_samples}
    for k, norm_sum in enumerate(norm_sums, start=1):
        row[f"grad_norm/layer{k}"] = norm_sum / len(batch_sizes)
    return row


def _logits(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Model outputs for all of ``x`` in eval mode, batch by batch, without autograd."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def _loss_and_accuracy(model: nn.Module, data: TensorData, batch_size: int) -> tuple[float, float]:
    logits = _logits(model, data.x, batch_size)
    loss_sum = F.cross_entropy(logits, data.y, reduction="sum")
    correct = (logits.argmax(dim=1) == data.y).sum()
    loss_total, n_correct = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
    return loss_total / len(data), n_correct / len(data)


def per_class_accuracy(confusion_matrix: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Per-class accuracy from a confusion matrix (rows true, columns predicted).

    Returns
    -------
    pandas.DataFrame
        ``class_index``, ``class_name``, ``correct`` (the diagonal), ``total`` (row sums) and
        ``accuracy`` = correct / total (NaN for a class with no samples).
    """
    matrix = np.asarray(confusion_matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion_matrix must be square (C, C), got shape {matrix.shape}")
    if len(class_names) != matrix.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {matrix.shape[0]}-class confusion matrix")
    correct = np.diag(matrix).astype(np.int64)
    total = matrix.sum(axis=1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(total > 0, correct / np.maximum(total, 1), np.nan)
    return pd.DataFrame(
        {
            "class_index": np.arange(len(class_names)),
            "class_name": list(class_names),
            "correct": correct,
            "total": total,
            "accuracy": accuracy,
        }
    )


def evaluate(model: nn.Module, data: TensorData, batch_size: int = 1024) -> Evaluation:
    """Evaluate a classifier on ``data`` (on the model's device) in eval mode, without autograd.

    Returns
    -------
    Evaluation
        Loss, accuracy, per-class accuracy, confusion matrix, probabilities and predictions.
    """
    if not isinstance(data, TensorData):
        raise TypeError(f"data must be a TensorData, got {type(data).__name__}")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    parameter = next(model.parameters(), None)
    if parameter is not None:
        data = data.to(parameter.device)
    logits = _logits(model, data.x, batch_size)
    n_classes = logits.shape[1]
    predictions = logits.argmax(dim=1)
    confusion = torch.bincount(data.y * n_classes + predictions, minlength=n_classes * n_classes)
    loss = F.cross_entropy(logits, data.y, reduction="mean")
    confusion_matrix = confusion.reshape(n_classes, n_classes).cpu().numpy()
    names = data.class_names if data.num_classes == n_classes else [f"class {k}" for k in range(n_classes)]
    return Evaluation(
        loss=float(loss),
        accuracy=float(np.trace(confusion_matrix) / len(data)),
        per_class_accuracy=per_class_accuracy(confusion_matrix, names),
        confusion_matrix=confusion_matrix,
        probabilities=torch.softmax(logits, dim=1).cpu().numpy(),
        predictions=predictions.cpu().numpy(),
        labels=data.y.cpu().numpy(),
    )


def _checked_inputs(config: object, train_data: object, test_data: object, callbacks: Iterable[Callback]) -> list[Callback]:
    """Check :func:`train`'s arguments (TypeError naming the bad one); return the callbacks as a list."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(train_data, TensorData) or not isinstance(test_data, TensorData):
        raise TypeError("train_data and test_data must be TensorData")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables (epoch, row, model), got {callback!r}")
    return callbacks


def _train_and_evaluate_epoch(
    model: nn.Module,
    batches: BatchIterator,
    optimizer: torch.optim.Optimizer,
    test_data: TensorData,
    epoch: int,
    config: TrainConfig,
    grad_norm_layers: Sequence[nn.Linear],
    captured: CapturedEpochs | None = None,
) -> dict:
    """One epoch of :func:`train`: the training pass, then the test evaluation; its history row."""
    start = time.perf_counter()
    description = f"epoch {epoch}/{config.epochs}"
    if captured is not None:
        metrics = train_captured_epoch(captured, batches, epoch, config.progress, description)
    else:
        metrics = train_one_epoch(
            model,
            batches,
            optimizer,
            epoch,
            progress=config.progress,
            grad_norm_layers=grad_norm_layers,
            description=description,
        )
    epoch_time = time.perf_counter() - start  # metrics were read from the device: synced
    start = time.perf_counter()
    test_loss, test_acc = _loss_and_accuracy(model, test_data, config.eval_batch_size)
    eval_time = time.perf_counter() - start

    samples = metrics.pop("samples")
    row = {
        "epoch": epoch,
        "train_loss": metrics.pop("train_loss"),
        "train_acc": metrics.pop("train_acc"),
        "test_loss": test_loss,
        "test_acc": test_acc,
        "epoch_time_s": epoch_time,
        "samples_per_sec": samples / epoch_time,
        "eval_time_s": eval_time,
        **metrics,
    }
    if config.progress:
        tqdm.write(
            f"epoch {epoch}/{config.epochs}: train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.2%} | test loss {test_loss:.4f} acc {test_acc:.2%} "
            f"| {epoch_time:.1f} s"
        )
    return row


def train(
    model: nn.Module,
    train_data: TensorData,
    test_data: TensorData,
    config: TrainConfig | None = None,
    callbacks: Iterable[Callback] = (),
) -> TrainResult:
    """Train a classifier with cross-entropy and evaluate it after every epoch.

    The caller builds the model (seed first with :func:`set_seed` for reproducible weights);
    ``train`` seeds again with ``config.seed`` for dropout and batch order, so the same seed
    gives the same history on CPU.

    Parameters
    ----------
    model : nn.Module
        Maps inputs to class logits; moved to the device.
    train_data, test_data : TensorData
        Moved to the device once.
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    callbacks : iterable of callables
        Each is called as ``callback(epoch, row, model)`` after every epoch; ``row`` is the
        epoch's history row. Exceptions propagate and stop training.

    Returns
    -------
    TrainResult
        ``history`` (one row per epoch: ``epoch``, ``train_loss``, ``train_acc``, ``test_loss``,
        ``test_acc``, ``epoch_time_s``, ``samples_per_sec``, ``eval_time_s``, and
        ``grad_norm/layer<k>`` with ``track_grad_norms``), the ``model`` and its final
        :class:`Evaluation` on ``test_data``.
    """
    config = TrainConfig() if config is None else config
    callbacks = _checked_inputs(config, train_data, test_data, callbacks)
    device = resolve_device(config.device)
    set_seed(config.seed)
    model.to(device)
    train_data, test_data = move_to_device(train_data, test_data, device)
    batches = BatchIterator(train_data, config.batch_size, True, config.seed, config.max_batches)
    plan = BatchPlan.of(batches)
    graphs = uses_cuda_graphs(config.cuda_graphs, device, config.optimizer) and plan.full_batches > 0
    optimizer = make_optimizer(model, config, device, capturable=graphs)
    grad_norm_layers = _linear_layers(model) if config.track_grad_norms else []
    captured = CapturedEpochs(model, optimizer, train_data, plan, grad_norm_layers) if graphs else None

    rows = []
    for epoch in range(1, config.epochs + 1):
        row = _train_and_evaluate_epoch(model, batches, optimizer, test_data, epoch, config, grad_norm_layers, captured)
        rows.append(row)
        for callback in callbacks:
            callback(epoch, dict(row), model)

    history = pd.DataFrame(rows)
    evaluation = evaluate(model, test_data, config.eval_batch_size)
    return TrainResult(history=history, model=model, evaluation=evaluation)
