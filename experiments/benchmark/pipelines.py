"""The four training pipelines the benchmark times, each one training run of the baseline model.

All four train the baseline model 784-512-256-128-10 (ReLU, dropout 0.3) with Adam lr 1e-3
and batch 128 on the same images: the notebook pipeline the notebook's own class, the others
``anncore.models.FashionMNISTClassifier``. Each loads its own copy of the images, so that its
peak memory includes its way of holding data.

- ``notebook``: the notebook's section 9 ``train_model``: a torchvision dataset with
  ``ToTensor()`` + ``Normalize`` per sample, ``DataLoader(batch_size=128, shuffle=True)``,
  ``optim.Adam`` with torch's default implementation, ``loss.item()`` and ``.sum().item()``
  per batch, a progress line every 100 batches, then its validation loop (batch 128).
- ``floor``: forward, backward and optimizer step over pre-normalised tensors on the device,
  shuffled by one index permutation per epoch; nothing else. Its optimizer is the trainer's
  own (``anncore.trainer.make_optimizer``), so ``anncore / floor`` isolates bookkeeping.
- ``anncore``: ``anncore.trainer.train`` with the ``TrainConfig`` the experiments build.
- ``captured_floor`` (CUDA only): the floor's step captured once as a CUDA graph and replayed
  per full batch: a static index buffer the batch's indices are copied into, dropout inside
  the graph, ``Adam(fused=True, capturable=True)``. On a GPU the model is launch-bound at batch
  128, so this, not the FLOP peak, is the device's own step floor; ``anncore / captured floor``
  says how far anncore is from it.
- ``anncore_mlflow``: the ``baseline`` experiment's training path, ``runs.tracked_run`` +
  ``datasets.log_input`` + ``training.train_logged`` (params, per-epoch metrics, finals and
  ``history.csv``), as a child of the active benchmark run.

Every pipeline returns a :class:`PipelineRun`: the training-pass time of each epoch (the first
one is the warm-up), the per-epoch evaluation time where the pipeline evaluates, and the wall
time of the whole run.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn, optim

from experiments.studies.baseline import DROPOUT, HIDDEN_SIZES
from anncore.trainer import TrainConfig
from experiments.benchmark.device_sync import synchronize

PIPELINES: tuple[str, ...] = ("notebook", "floor", "anncore", "anncore_mlflow")
CUDA_PIPELINES: tuple[str, ...] = ("captured_floor",)  # timed only on a CUDA device
DESCRIPTIONS: dict[str, str] = {
    "notebook": "torchvision per-sample transforms + DataLoader, per-batch .item()",
    "floor": "bare forward + backward + optimizer step over device tensors",
    "captured_floor": "the floor's step captured once as a CUDA graph, replayed per batch",
    "anncore": "anncore.trainer.train, as the experiments call it",
    "anncore_mlflow": "anncore + MLflow logging, as the baseline experiment runs it",
}
# The experiments' training defaults (the notebook's batch 128, Adam lr 1e-3), which the
# anncore_mlflow pipeline gets through train_logged: every pipeline trains with the same.
BATCH_SIZE = TrainConfig.batch_size
LEARNING_RATE = TrainConfig.learning_rate
NOTEBOOK_PRINT_EVERY = 100  # the notebook prints a progress line every 100 batches
GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture (torch's documented recipe)


def pipelines_for(device: torch.device) -> tuple[str, ...]:
    """The pipelines timed on ``device``: the four everywhere, and the captured floor on CUDA."""
    return PIPELINES + CUDA_PIPELINES if device.type == "cuda" else PIPELINES


@dataclass(frozen=True)
class BenchmarkSetup:
    """What every pipeline is asked to do.

    Attributes
    ----------
    data_dir : Path
        Root holding ``FashionMNIST/raw`` (already checked to be complete).
    train_size, test_size : int or None
        Images per split: None keeps the split as loaded, a smaller number takes the first
        ones, a larger one repeats the split cyclically (to emulate the full 60,000).
    epochs : int
        Epochs per run; the first is the warm-up.
    device : torch.device
    seed : int
    max_batches : int or None
        Training batches per epoch (quick runs), else all.
    progress : bool
        Progress bars in the anncore pipelines, as the experiments show them by default.
    sha256 : str
        ``anncore.data.dataset_checksum`` of the raw files, logged by ``anncore_mlflow``.
    cuda_graphs : bool
        The anncore pipelines' ``TrainConfig.cuda_graphs`` (only matters on CUDA).
    system_metrics : bool
        The MLflow pipeline's runs log MLflow's system metrics, as the experiments' do by default.
    """

    data_dir: Path
    train_size: int | None
    test_size: int | None
    epochs: int
    device: torch.device
    seed: int = 0
    max_batches: int | None = None
    progress: bool = False
    sha256: str = ""
    cuda_graphs: bool = True
    system_metrics: bool = True


@dataclass
class PipelineRun:
    """Timings of one run of one pipeline.

    Attributes
    ----------
    epoch_seconds : list of float
        Training-pass wall time of each epoch (batches, forward, backward, step and the
        pipeline's own bookkeeping; evaluation excluded). Index 0 is the warm-up epoch.
    samples_per_epoch : int
        Training samples one epoch processed.
    run_seconds : float
        Wall time of the whole run: set-up of model and optimizer, every epoch with its
        evaluation and logging, and (for the anncore pipelines) the final evaluation.
    eval_seconds : list of float
        Per-epoch evaluation wall time (empty for ``floor``, which does not evaluate).
    optimizer : str
        Which Adam implementation the pipeline uses.
    steps_per_epoch : int, optional
        Optimizer steps one epoch took; None: one per batch of ``BATCH_SIZE``, the last smaller.
    """

    epoch_seconds: list[float]
    samples_per_epoch: int
    run_seconds: float
    eval_seconds: list[float] = field(default_factory=list)
    optimizer: str = ""
    steps_per_epoch: int | None = None

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch."""
        return self.steps_per_epoch or math.ceil(self.samples_per_epoch / BATCH_SIZE)


def resize(tensor: torch.Tensor, n: int | None) -> torch.Tensor:
    """The first ``n`` items of ``tensor``, or all of it repeated cyclically up to ``n`` items."""
    if n is None or n == len(tensor):
        return tensor
    if n < len(tensor):
        return tensor[:n]
    return tensor[torch.arange(n) % len(tensor)]


def describe_optimizer(optimizer: optim.Optimizer, device: torch.device) -> str:
    """Name the implementation of an optimizer's step: fused, foreach or the for-loop."""
    name = type(optimizer).__name__
    fused, foreach = optimizer.defaults.get("fused"), optimizer.defaults.get("foreach")
    if fused:
        return f"{name} fused=True"
    if foreach or (foreach is None and device.type == "cuda"):
        return f"{name} foreach (torch default on CUDA)" if foreach is None else f"{name} foreach=True"
    return f"{name} for-loop (torch default on CPU)" if foreach is None else f"{name} foreach=False"


class NotebookClassifier(nn.Module):
    """The notebook's own ``FashionMNISTClassifier`` (section 9), verbatim but for docstrings.

    The notebook pipeline trains this rather than ``anncore.models``' version, so that it
    stays the notebook's code whatever anncore's model does for speed.
    """

    def __init__(self, hidden_sizes=(512, 256, 128), num_classes=10, dropout_rate=0.3):
        super().__init__()
        self.input_size = 28 * 28
        layers = []
        input_size = self.input_size
        for hidden_size in hidden_sizes:
            layers.extend([nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout_rate)])
            input_size = hidden_size
        layers.append(nn.Linear(input_size, num_classes))
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.network(x)


def _build_model(seed: int) -> nn.Module:
    from anncore.models import FashionMNISTClassifier
    from anncore.trainer import set_seed

    set_seed(seed)
    return FashionMNISTClassifier(HIDDEN_SIZES, dropout_rate=DROPOUT)


def load_tensors(setup: BenchmarkSetup):
    """The train and test splits as normalised ``TensorData`` (anncore's loader), resized."""
    from anncore.data import TensorData, load_fashion_mnist

    splits = []
    for train, size in ((True, setup.train_size), (False, setup.test_size)):
        data = load_fashion_mnist(setup.data_dir, train=train, download=False)
        splits.append(TensorData(resize(data.x, size), resize(data.y, size), data.num_classes, data.class_names))
    return splits[0], splits[1]


def _anncore_config(setup: BenchmarkSetup):
    """The ``TrainConfig`` the ``baseline`` experiment trains with, for this setup."""
    return TrainConfig(
        epochs=setup.epochs,
        seed=setup.seed,
        device=str(setup.device),
        progress=setup.progress,
        max_batches=setup.max_batches,
        cuda_graphs=setup.cuda_graphs,
    )


def notebook_datasets(setup: BenchmarkSetup):
    """The notebook's torchvision train and test datasets (per-sample transforms), resized."""
    import torchvision
    from torchvision import transforms

    from anncore.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,))]
    )
    splits = []
    for train, size in ((True, setup.train_size), (False, setup.test_size)):
        dataset = torchvision.datasets.FashionMNIST(setup.data_dir, train=train, download=False, transform=transform)
        dataset.data, dataset.targets = resize(dataset.data, size), resize(dataset.targets, size)
        splits.append(dataset)
    return splits[0], splits[1]


def run_notebook(setup: BenchmarkSetup) -> PipelineRun:
    """The notebook's ``train_model`` loop (section 9) with its model, timed per epoch."""
    from torch.utils.data import DataLoader

    from anncore.trainer import set_seed

    train_dataset, test_dataset = notebook_datasets(setup)
    train_loader = DataLoader(train_dataset, batch_size=BATCH_SIZE, shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=BATCH_SIZE, shuffle=False)
    device = setup.device
    quiet = open(os.devnull, "w")  # the notebook's progress lines, formatted but not shown

    run_start = time.perf_counter()
    set_seed(setup.seed)  # torch's global generator also drives the DataLoader's shuffling
    model = NotebookClassifier(HIDDEN_SIZES, num_classes=10, dropout_rate=DROPOUT).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=LEARNING_RATE)
    epoch_seconds, eval_seconds, samples = [], [], 0
    for epoch in range(setup.epochs):
        start = time.perf_counter()
        model.train()
        train_loss, train_correct, train_total = 0.0, 0, 0
        for batch_idx, (data, target) in enumerate(train_loader):
            if setup.max_batches is not None and batch_idx == setup.max_batches:
                break
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            train_loss += loss.item()
            _, predicted = torch.max(output.data, 1)
            train_total += target.size(0)
            train_correct += (predicted == target).sum().item()
            if batch_idx % NOTEBOOK_PRINT_EVERY == 0:
                print(f"Эпоха {epoch + 1}/{setup.epochs}, Батч {batch_idx}/{len(train_loader)}, "
                      f"Loss: {loss.item():.4f}", file=quiet)
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - start)
        samples = train_total

        start = time.perf_counter()
        model.eval()
        test_loss, test_correct, test_total = 0.0, 0, 0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                test_loss += criterion(output, target).item()
                _, predicted = torch.max(output.data, 1)
                test_total += target.size(0)
                test_correct += (predicted == target).sum().item()
        eval_seconds.append(time.perf_counter() - start)
        print(f"Эпоха {epoch + 1}: {train_loss / max(train_total, 1):.4f} {100.0 * test_correct / test_total:.2f}%",
              file=quiet)
    run_seconds = time.perf_counter() - run_start
    quiet.close()
    return PipelineRun(epoch_seconds, samples, run_seconds, eval_seconds, describe_optimizer(optimizer, device))


def run_floor(setup: BenchmarkSetup) -> PipelineRun:
    """Forward, backward and step over device tensors, shuffled by index permutation; no metrics."""
    from anncore.trainer import make_optimizer

    train_data, _ = load_tensors(setup)
    device = setup.device
    x, y = train_data.x.to(device), train_data.y.to(device)
    n_batches = _batches_per_epoch(len(y), setup.max_batches)

    run_start = time.perf_counter()
    model = _build_model(setup.seed).to(device)
    optimizer = make_optimizer(model, _anncore_config(setup), device)
    generator = torch.Generator().manual_seed(setup.seed)
    model.train()
    epoch_seconds = []
    for _ in range(setup.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=generator).to(device)
        for i in range(n_batches):
            index = order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            loss = F.cross_entropy(model(x.index_select(0, index)), y.index_select(0, index))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - start)
    run_seconds = time.perf_counter() - run_start
    samples = min(len(y), n_batches * BATCH_SIZE)
    return PipelineRun(epoch_seconds, samples, run_seconds, [], describe_optimizer(optimizer, device))


def run_captured_floor(setup: BenchmarkSetup) -> PipelineRun:
    """The floor's step captured as one CUDA graph and replayed per full batch (CUDA only)."""
    device = setup.device
    if device.type != "cuda":
        raise ValueError(f"the captured floor needs a CUDA device, got {device}")
    train_data, _ = load_tensors(setup)
    x, y = train_data.x.to(device), train_data.y.to(device)
    n_batches = min(len(y) // BATCH_SIZE, setup.max_batches or len(y))

    run_start = time.perf_counter()
    model = _build_model(setup.seed).to(device).train()
    optimizer = optim.Adam(model.parameters(), lr=LEARNING_RATE, fused=True, capturable=True)
    index = torch.arange(BATCH_SIZE, device=device)  # the static index buffer the graph reads

    def step() -> None:
        F.cross_entropy(model(x.index_select(0, index)), y.index_select(0, index)).backward()
        optimizer.step()

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(GRAPH_WARMUP_STEPS):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    optimizer.zero_grad(set_to_none=True)  # the captured backward allocates (and then overwrites) the gradients
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # as anncore's captured step
        step()
    generator = torch.Generator().manual_seed(setup.seed)
    epoch_seconds = []
    for _ in range(setup.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(y), generator=generator).to(device)
        for i in range(n_batches):
            index.copy_(order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE])
            graph.replay()
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - start)
    run_seconds = time.perf_counter() - run_start
    return PipelineRun(epoch_seconds, n_batches * BATCH_SIZE, run_seconds, [], describe_optimizer(optimizer, device)
                       + " capturable=True", steps_per_epoch=n_batches)


def _batches_per_epoch(n_samples: int, max_batches: int | None) -> int:
    n_batches = math.ceil(n_samples / BATCH_SIZE)
    return n_batches if max_batches is None else min(n_batches, max_batches)


def _trainer_run(history, n_train: int, run_seconds: float, setup: BenchmarkSetup) -> PipelineRun:
    """A ``PipelineRun`` from the trainer's history (its ``epoch_time_s`` excludes evaluation)."""
    from anncore.trainer import make_optimizer

    probe = make_optimizer(nn.Linear(1, 1).to(setup.device), _anncore_config(setup), setup.device)
    samples = min(n_train, _batches_per_epoch(n_train, setup.max_batches) * BATCH_SIZE)
    return PipelineRun(
        epoch_seconds=history["epoch_time_s"].tolist(),
        samples_per_epoch=samples,
        run_seconds=run_seconds,
        eval_seconds=history["eval_time_s"].tolist(),
        optimizer=describe_optimizer(probe, setup.device),
    )


def run_anncore(setup: BenchmarkSetup) -> PipelineRun:
    """``anncore.trainer.train`` with metrics and history, as the experiments use it."""
    from anncore.trainer import train

    train_data, test_data = load_tensors(setup)
    run_start = time.perf_counter()
    model = _build_model(setup.seed)
    result = train(model, train_data, test_data, _anncore_config(setup))
    run_seconds = time.perf_counter() - run_start
    return _trainer_run(result.history, len(train_data), run_seconds, setup)


def run_anncore_mlflow(setup: BenchmarkSetup) -> PipelineRun:
    """The ``baseline`` experiment's training path, logged to MLflow as a child of the active run.

    Needs an active MLflow run (the benchmark's own) in the store to log to.
    """
    from anncore.models import FashionMNISTClassifier
    from experiments.tracking import datasets, runs
    from experiments.tracking.provenance import display_path
    from experiments.tracking.training import train_logged

    train_data, test_data = load_tensors(setup)
    data = datasets.FashionMNIST(train_data, test_data, setup.sha256, display_path(setup.data_dir))
    settings = benchmark_settings(setup)
    run_start = time.perf_counter()
    with runs.tracked_run(settings, "benchmark", role="child", arm="anncore_mlflow", seed=setup.seed):
        datasets.log_input(data)
        result = train_logged(
            lambda: FashionMNISTClassifier(HIDDEN_SIZES, dropout_rate=DROPOUT),
            data.train,
            data.test,
            _anncore_config(setup),
            dataset_params=data.params(),
        )
    run_seconds = time.perf_counter() - run_start
    return _trainer_run(result.history, len(train_data), run_seconds, setup)


def benchmark_settings(setup: BenchmarkSetup):
    """The experiments' ``RunSettings`` matching ``setup`` (quick when batches are capped)."""
    from experiments.settings import QUICK_MAX_BATCHES, Invocation, RunSettings

    quick = setup.max_batches is not None
    if quick and setup.max_batches != QUICK_MAX_BATCHES:
        raise ValueError(f"max_batches must be None or {QUICK_MAX_BATCHES} (the experiments' --quick), "
                         f"got {setup.max_batches!r}")
    return RunSettings(
        invocation=Invocation(epochs=setup.epochs, seeds=(setup.seed,), device=str(setup.device), quick=quick),
        data_dir=setup.data_dir,
        download=False,
        progress=setup.progress,
        cuda_graphs=setup.cuda_graphs,
        system_metrics=setup.system_metrics,
    )


RUNNERS: dict[str, Callable[[BenchmarkSetup], PipelineRun]] = {
    "notebook": run_notebook,
    "floor": run_floor,
    "anncore": run_anncore,
    "anncore_mlflow": run_anncore_mlflow,
    "captured_floor": run_captured_floor,
}
