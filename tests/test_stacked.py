"""anncore.stacked on the CPU: every member of a stack trains exactly as it would alone with
anncore.trainer.train (same seed, same batches, dropout off), pruned members leave with the
weights they had, and a stack refuses members that differ in shape or in shared settings."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from anncore.data import make_synthetic_classes
from anncore.models import CustomANN
from anncore.stacked import StackedMLP, train_stacked
from anncore.trainer import TrainConfig, set_seed, train

LEARNING_RATES = (0.003, 0.01, 0.03)
COLUMNS = ["train_loss", "train_acc", "test_loss", "test_acc"]


@pytest.fixture(scope="module")
def data():
    return make_synthetic_classes(120, seed=0), make_synthetic_classes(40, seed=1)


def members(n: int = len(LEARNING_RATES), **kwargs) -> list[CustomANN]:
    models = []
    for k in range(n):
        set_seed(k)  # each member its own initial weights
        models.append(CustomANN([2, 16, 8, 4], activation="tanh", **kwargs))
    return models


def configs(epochs: int = 3) -> list[TrainConfig]:
    return [TrainConfig(epochs=epochs, batch_size=50, learning_rate=lr, seed=5, device="cpu", progress=False)
            for lr in LEARNING_RATES]


def alone(model: CustomANN, config: TrainConfig, data):
    return train(copy.deepcopy(model), data[0], data[1], config)


def assert_same_weights(mine: CustomANN, theirs: CustomANN) -> None:
    for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_each_member_trains_as_it_would_alone(data) -> None:
    models, cfgs = members(), configs()
    separate = [alone(m, c, data) for m, c in zip(models, cfgs)]
    stacked = train_stacked(models, data[0], data[1], cfgs)
    assert stacked.left_at == {} and stacked.errors == {}
    for k, reference in enumerate(separate):
        history = stacked.histories[k]
        assert history["epoch"].tolist() == [1, 2, 3]
        for column in COLUMNS:
            assert history[column].tolist() == pytest.approx(reference.history[column].tolist(), rel=1e-5, abs=1e-6), (k, column)
        assert_same_weights(stacked.models[k], reference.model)
    # The learning rates really differ per member: the three histories are not the same.
    assert len({round(h["train_loss"].iloc[-1], 6) for h in stacked.histories.values()}) == 3


def test_a_pruned_member_leaves_with_its_weights_and_the_others_go_on(data) -> None:
    models, cfgs = members(), configs()
    at_one = alone(models[1], configs(epochs=1)[1], data)
    rest = [alone(models[k], cfgs[k], data) for k in (0, 2)]
    seen = []

    def prune_member_1(epoch, rows):
        seen.append((epoch, sorted(rows)))
        return [1] if epoch == 1 else []

    stacked = train_stacked(models, data[0], data[1], cfgs, on_epoch=prune_member_1)
    assert seen == [(1, [0, 1, 2]), (2, [0, 2]), (3, [0, 2])]
    assert stacked.left_at == {1: 1}
    assert len(stacked.histories[1]) == 1
    assert stacked.histories[1]["train_loss"].tolist() == pytest.approx(at_one.history["train_loss"].tolist(), rel=1e-5)
    assert_same_weights(stacked.models[1], at_one.model)
    for k, reference in zip((0, 2), rest):
        assert stacked.histories[k]["test_loss"].tolist() == pytest.approx(reference.history["test_loss"].tolist(), rel=1e-5)
        assert_same_weights(stacked.models[k], reference.model)


def test_dropout_is_per_member(data) -> None:
    set_seed(0)
    models = [CustomANN([2, 64, 4], dropout_rate=p) for p in (0.0, 0.5)]
    stack = StackedMLP(models).train()
    x = data[0].x[:32]
    torch.manual_seed(1)
    out = stack(x)
    with torch.no_grad():
        assert torch.allclose(out[0], models[0](x), atol=1e-6)  # p = 0: no mask at all
        hidden = stack.activation(x @ stack.weights[0][1] + stack.biases[0][1])
    torch.manual_seed(1)
    masks = torch.rand(2, 32, 64)[1] < 0.5
    expected = (hidden * masks / 0.5) @ stack.weights[1][1] + stack.biases[1][1]
    torch.testing.assert_close(out[1], expected, rtol=1e-5, atol=1e-6)


def test_a_stack_refuses_mixed_shapes_and_settings(data) -> None:
    with pytest.raises(ValueError, match="models\\[1\\] is 2-8-4"):
        StackedMLP([CustomANN([2, 16, 4]), CustomANN([2, 8, 4])])
    with pytest.raises(ValueError, match="configs\\[1\\].batch_size is 32"):
        train_stacked(members(2), data[0], data[1], [TrainConfig(device="cpu"), TrainConfig(device="cpu", batch_size=32)])
    with pytest.raises(ValueError, match="'adam'"):
        train_stacked(members(1), data[0], data[1], [TrainConfig(device="cpu", optimizer="sgd")])
    with pytest.raises(ValueError, match="2 models but 1 configs"):
        train_stacked(members(2), data[0], data[1], [TrainConfig(device="cpu")])


def test_a_member_whose_loss_is_not_finite_leaves_and_the_others_finish(data) -> None:
    models = members(2)
    with torch.no_grad():
        models[1].linear_layers()[-1].weight[0, 0] = float("nan")  # member 1's loss is NaN from its first batch
    cfgs = configs(epochs=2)[:2]
    reference = alone(models[0], cfgs[0], data)
    stacked = train_stacked(models, data[0], data[1], cfgs)
    error = stacked.errors[1]
    assert (error.epoch, error.batch) == (1, 1) and not math.isfinite(error.loss)
    assert len(stacked.histories[1]) == 0 and 1 not in stacked.left_at
    assert stacked.histories[0]["train_loss"].tolist() == pytest.approx(reference.history["train_loss"].tolist(), rel=1e-5)
