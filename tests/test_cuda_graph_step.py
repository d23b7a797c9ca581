"""anncore.cuda_graph_step on the CPU: the batch plan, the step body run eagerly (capture=False)
against the trainer's eager epoch, and when the captured path is taken. The capture itself can
only run on CUDA: tests/test_cuda.py checks it there (marked ``cuda``)."""

from __future__ import annotations

import copy

import pytest
import torch

from anncore.cuda_graph_step import BatchPlan, CapturedEpochs, uses_cuda_graphs
from anncore.data import BatchIterator, make_synthetic_classes
from anncore.models import CustomANN
from anncore.trainer import (
    NonFiniteLossError,
    TrainConfig,
    make_optimizer,
    set_seed,
    train_captured_epoch,
    train_one_epoch,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "n, batch_size, max_batches, full, remainder",
    [(400, 32, None, 12, 16), (400, 40, None, 10, 0), (400, 32, 5, 5, 0), (400, 32, 13, 12, 16), (20, 32, None, 0, 20)],
)
def test_the_plan_splits_an_epoch_as_the_batch_iterator_does(n, batch_size, max_batches, full, remainder) -> None:
    data = make_synthetic_classes(n // 4, seed=0)
    batches = BatchIterator(data, batch_size, True, 0, max_batches)
    plan = BatchPlan.of(batches)
    assert (plan.full_batches, plan.remainder) == (full, remainder)
    sizes = [len(y) for _, y in batches]
    assert sizes == [batch_size] * full + ([remainder] if remainder else [])
    assert plan.samples == sum(sizes)


def test_the_epoch_order_is_the_one_the_batches_are_cut_from() -> None:
    data = make_synthetic_classes(25, seed=0)
    a, b = BatchIterator(data, 16, True, 3), BatchIterator(data, 16, True, 3)
    for _ in range(2):  # two epochs: the generator advances the same way
        order = a.epoch_order()
        for k, (x, y) in enumerate(b):
            index = order[k * 16 : (k + 1) * 16]
            assert torch.equal(x, data.x[index]) and torch.equal(y, data.y[index])


def _two_trainings(dropout: float, track: bool, max_batches: int | None = None):
    """The trainer's eager epochs and the captured path's body run eagerly, from the same state."""
    train_data = make_synthetic_classes(100, seed=0)
    config = TrainConfig(epochs=3, batch_size=48, learning_rate=0.01, device="cpu", progress=False)
    set_seed(0)
    model = CustomANN([2, 16, 16, 4], dropout_rate=dropout)
    twin = copy.deepcopy(model)
    layers = model.linear_layers() if track else []
    eager_opt, twin_opt = make_optimizer(model, config, CPU), make_optimizer(twin, config, CPU)
    eager_batches = BatchIterator(train_data, 48, True, 0, max_batches)
    twin_batches = BatchIterator(train_data, 48, True, 0, max_batches)
    captured = CapturedEpochs(twin, twin_opt, train_data, BatchPlan.of(twin_batches),
                              twin.linear_layers() if track else [], capture=False)
    rows = []
    for epoch in (1, 2, 3):
        torch.manual_seed(epoch)  # the same dropout masks for both
        eager = train_one_epoch(model, eager_batches, eager_opt, epoch, grad_norm_layers=layers)
        torch.manual_seed(epoch)
        steps = train_captured_epoch(captured, twin_batches, epoch)
        rows.append((eager, steps))
    return rows, model, twin


@pytest.mark.parametrize("dropout, track, max_batches", [(0.0, True, None), (0.3, False, None), (0.0, False, 3)])
def test_the_step_body_trains_exactly_as_the_eager_epoch(dropout, track, max_batches) -> None:
    rows, model, twin = _two_trainings(dropout, track, max_batches)
    for eager, steps in rows:
        assert steps.keys() == eager.keys()
        assert steps == pytest.approx(eager, rel=1e-6, abs=1e-7)
    assert rows[0][0]["samples"] == (144 if max_batches else 400)
    for (name, mine), theirs in zip(twin.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7, msg=name)


def test_a_non_finite_loss_names_its_batch_in_the_captured_path() -> None:
    data = make_synthetic_classes(100, seed=0)
    data.x[37] = float("nan")
    batches = BatchIterator(data, 48, True, 0)
    order = BatchIterator(data, 48, True, 0).epoch_order()
    bad_batch = int((order == 37).nonzero()) // 48 + 1
    model = CustomANN([2, 8, 4])
    optimizer = make_optimizer(model, TrainConfig(device="cpu"), CPU)
    captured = CapturedEpochs(model, optimizer, data, BatchPlan.of(batches), capture=False)
    with pytest.raises(NonFiniteLossError) as error:
        train_captured_epoch(captured, batches, epoch=1)
    assert (error.value.epoch, error.value.batch) == (1, bad_batch)


def test_graphs_only_on_cuda_with_adam_and_never_captured_on_the_cpu() -> None:
    cuda = torch.device("cuda")
    assert uses_cuda_graphs(True, cuda, "adam")
    assert not uses_cuda_graphs(False, cuda, "adam")
    assert not uses_cuda_graphs(True, cuda, "sgd")
    assert not uses_cuda_graphs(True, CPU, "adam") and not uses_cuda_graphs(True, torch.device("mps"), "adam")
    data = make_synthetic_classes(50, seed=0)
    model = CustomANN([2, 8, 4])
    optimizer = make_optimizer(model, TrainConfig(device="cpu"), CPU)
    plan = BatchPlan.of(BatchIterator(data, 16))
    with pytest.raises(ValueError, match="CUDA device"):
        CapturedEpochs(model, optimizer, data, plan, capture=True)
    with pytest.raises(ValueError, match="full batch"):
        CapturedEpochs(model, optimizer, data, BatchPlan(16, 0, 5), capture=False)
    with pytest.raises(TypeError, match="cuda_graphs.*'yes'"):
        TrainConfig(cuda_graphs="yes")


def test_train_never_takes_the_captured_path_on_the_cpu(monkeypatch) -> None:
    import anncore.trainer as trainer

    def refuse(*args, **kwargs):
        raise AssertionError("CapturedEpochs built on the CPU")

    monkeypatch.setattr(trainer, "CapturedEpochs", refuse)
    data = make_synthetic_classes(50, seed=0)
    histories = []
    for cuda_graphs in (True, False):
        set_seed(0)
        config = TrainConfig(epochs=2, batch_size=32, device="cpu", progress=False, cuda_graphs=cuda_graphs)
        histories.append(trainer.train(CustomANN([2, 8, 4]), data, data, config).history)
    for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert histories[0][column].tolist() == histories[1][column].tolist()
