"""anncore.trainer: real short trainings, metrics against torch references, errors."""

from __future__ import annotations

import copy
import io
import math
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from anncore.data import (
    SYNTHETIC_LAYER_SIZES,
    BatchIterator,
    TensorData,
    load_fashion_mnist,
    make_synthetic_classes,
)
from anncore.models import CustomANN, FashionMNISTClassifier
from anncore.trainer import (
    Evaluation,
    NonFiniteLossError,
    TrainConfig,
    evaluate,
    per_class_accuracy,
    resolve_device,
    set_seed,
    train,
)

TIMING_COLUMNS = ["epoch_time_s", "samples_per_sec", "eval_time_s"]


@pytest.fixture(scope="module")
def synthetic() -> tuple[TensorData, TensorData]:
    return make_synthetic_classes(100, seed=0), make_synthetic_classes(50, seed=1)


def quiet(**overrides: object) -> TrainConfig:
    return TrainConfig(**{"device": "cpu", "progress": False, **overrides})


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.01), ("sgd", 0.05)])
def test_short_training_on_synthetic_data_beats_90_percent(synthetic, optimizer: str, lr: float) -> None:
    train_data, test_data = synthetic
    set_seed(0)
    model = CustomANN(SYNTHETIC_LAYER_SIZES, activation="relu")
    config = quiet(epochs=30, batch_size=32, learning_rate=lr, optimizer=optimizer)
    result = train(model, train_data, test_data, config)
    history = result.history
    assert history["epoch"].tolist() == list(range(1, 31))
    assert history["test_acc"].iloc[-1] > 0.90
    assert result.evaluation.accuracy > 0.90
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert result.model is model


def test_same_seed_gives_identical_history_on_cpu(synthetic) -> None:
    train_data, test_data = synthetic

    def run(seed: int) -> pd.DataFrame:
        set_seed(seed)
        model = CustomANN([2, 16, 8, 4], activation="tanh", dropout_rate=0.2)
        config = quiet(epochs=4, batch_size=16, seed=seed, track_grad_norms=True)
        return train(model, train_data, test_data, config).history.drop(columns=TIMING_COLUMNS)

    first, second = run(7), run(7)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert not first.equals(run(8))


def test_history_columns_and_callback_rows(synthetic) -> None:
    train_data, test_data = synthetic
    calls = []
    set_seed(0)
    model = CustomANN(SYNTHETIC_LAYER_SIZES)

    def record(*args: object) -> None:
        calls.append(args)

    result = train(model, train_data, test_data, quiet(epochs=3), callbacks=[record])
    history = result.history
    assert list(history.columns) == [
        "epoch", "train_loss", "train_acc", "test_loss", "test_acc",
        "epoch_time_s", "samples_per_sec", "eval_time_s",
    ]  # fmt: skip
    assert [epoch for epoch, _, _ in calls] == [1, 2, 3]
    assert all(m is model for _, _, m in calls)
    assert [row for _, row, _ in calls] == history.to_dict("records")
    assert ((history[["train_acc", "test_acc"]] >= 0) & (history[["train_acc", "test_acc"]] <= 1)).all().all()
    assert (history["epoch_time_s"] > 0).all()
    np.testing.assert_allclose(history["samples_per_sec"], len(train_data) / history["epoch_time_s"])


def test_epoch_metrics_match_a_direct_torch_computation(synthetic) -> None:
    train_data, test_data = synthetic
    set_seed(0)
    model = CustomANN([2, 8, 4])
    initial = copy.deepcopy(model)
    # One full-batch step: the reported train loss is the loss before that step.
    config = quiet(epochs=1, batch_size=len(train_data), track_grad_norms=True)
    result = train(model, train_data, test_data, config)
    row = result.history.iloc[0]

    logits = initial(train_data.x)
    loss = F.cross_entropy(logits, train_data.y)
    loss.backward()
    assert row["train_loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert row["train_acc"] == pytest.approx((logits.argmax(1) == train_data.y).float().mean().item())
    for k, layer in enumerate(initial.linear_layers(), start=1):
        assert row[f"grad_norm/layer{k}"] == pytest.approx(layer.weight.grad.norm().item(), rel=1e-5)

    with torch.no_grad():
        test_logits = model(test_data.x)
    assert row["test_loss"] == pytest.approx(F.cross_entropy(test_logits, test_data.y).item(), rel=1e-5)
    assert row["test_acc"] == pytest.approx((test_logits.argmax(1) == test_data.y).float().mean().item())


def test_train_loss_is_the_per_sample_mean_over_unequal_batches(synthetic) -> None:
    # 400 samples in batches of 150: 150, 150, 100. With learning rate tiny the model barely moves,
    # so the per-sample mean over the epoch is the initial model's mean loss.
    train_data, test_data = synthetic
    set_seed(0)
    model = CustomANN([2, 8, 4])
    expected = F.cross_entropy(model(train_data.x), train_data.y).item()
    config = quiet(epochs=1, batch_size=150, learning_rate=1e-12, optimizer="sgd", momentum=0.0)
    result = train(model, train_data, test_data, config)
    assert result.history["train_loss"].iloc[0] == pytest.approx(expected, rel=1e-6)


def test_grad_norms_per_linear_layer(synthetic) -> None:
    """Each epoch's ``grad_norm/layer<k>`` is the mean over its batches of the L2 norm of layer k's
    weight gradient, recomputed here with torch.autograd and plain Adam over the same batches."""
    train_data, test_data = synthetic
    set_seed(0)
    model = CustomANN([2, 8, 6, 4])
    reference = copy.deepcopy(model)
    config = quiet(epochs=3, batch_size=16, learning_rate=0.01, track_grad_norms=True)
    history = train(model, train_data, test_data, config).history
    columns = [c for c in history.columns if c.startswith("grad_norm/")]
    assert columns == ["grad_norm/layer1", "grad_norm/layer2", "grad_norm/layer3"]

    weights = [m.weight for m in reference.modules() if isinstance(m, torch.nn.Linear)]
    optimizer = torch.optim.Adam(reference.parameters(), lr=config.learning_rate)
    batches = BatchIterator(train_data, config.batch_size, True, config.seed, config.max_batches)  # train's order
    for epoch in range(config.epochs):
        norms = []
        for x, y in batches:
            loss = F.cross_entropy(reference(x), y)
            grads = torch.autograd.grad(loss, weights, retain_graph=True)
            norms.append([math.sqrt(float((g.double() ** 2).sum())) for g in grads])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert len(norms) == math.ceil(len(train_data) / config.batch_size)
        np.testing.assert_allclose(history.loc[epoch, columns].to_numpy(float), np.mean(norms, axis=0), rtol=1e-4)
    assert history[columns].nunique().min() == config.epochs  # the values move as the weights train


def test_evaluation_against_independent_computation(synthetic) -> None:
    _, test_data = synthetic
    set_seed(1)
    model = CustomANN([2, 5, 4])
    evaluation = evaluate(model, test_data, batch_size=64)
    assert isinstance(evaluation, Evaluation)

    with torch.no_grad():
        logits = model(test_data.x)
    labels = test_data.y.numpy()
    predictions = logits.argmax(1).numpy()
    confusion = np.zeros((4, 4), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    np.testing.assert_array_equal(evaluation.confusion_matrix, confusion)
    np.testing.assert_array_equal(evaluation.predictions, predictions)
    np.testing.assert_array_equal(evaluation.labels, labels)
    np.testing.assert_allclose(evaluation.probabilities, torch.softmax(logits, 1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(evaluation.probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert evaluation.loss == pytest.approx(F.cross_entropy(logits, test_data.y).item(), rel=1e-6)
    assert evaluation.accuracy == pytest.approx(float(np.mean(predictions == labels)))

    table = evaluation.per_class_accuracy
    assert list(table.columns) == ["class_index", "class_name", "correct", "total", "accuracy"]
    assert table["class_name"].tolist() == list(test_data.class_names)
    for k in range(4):
        in_class = labels == k
        assert table.loc[k, "total"] == in_class.sum()
        assert table.loc[k, "correct"] == (predictions[in_class] == k).sum()
    assert model.training, "evaluate must restore the model's training mode"


def test_per_class_accuracy_from_a_hand_written_matrix() -> None:
    matrix = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 6]])
    table = per_class_accuracy(matrix, ["a", "b", "c"])
    assert table["correct"].tolist() == [3, 0, 6]
    assert table["total"].tolist() == [4, 0, 8]
    assert table["accuracy"].iloc[0] == 0.75 and table["accuracy"].iloc[2] == 0.75
    assert math.isnan(table["accuracy"].iloc[1])
    with pytest.raises(ValueError, match="2 class names"):
        per_class_accuracy(matrix, ["a", "b"])


def test_training_on_tiny_fashion_mnist_images(tiny_fashion_root: Path) -> None:
    train_data = load_fashion_mnist(tiny_fashion_root, train=True, download=False)
    test_data = load_fashion_mnist(tiny_fashion_root, train=False, download=False)
    set_seed(0)
    model = FashionMNISTClassifier(hidden_sizes=[32], dropout_rate=0.3)
    result = train(model, train_data, test_data, quiet(epochs=5))
    assert result.history["test_acc"].iloc[-1] > 0.9
    assert result.evaluation.per_class_accuracy["class_name"].iloc[0] == "T-shirt/top"
    assert result.evaluation.confusion_matrix.sum() == 200


def test_non_finite_loss_names_epoch_and_first_batch(synthetic) -> None:
    train_data, test_data = synthetic

    def poison(epoch: int, row: dict, model: torch.nn.Module) -> None:
        with torch.no_grad():
            model.linear_layers()[0].weight[0, 0] = float("nan")

    set_seed(0)
    with pytest.raises(NonFiniteLossError) as error:
        train(CustomANN([2, 8, 4]), train_data, test_data, quiet(epochs=3), callbacks=[poison])
    assert (error.value.epoch, error.value.batch) == (2, 1)
    assert math.isnan(error.value.loss)
    assert "epoch 2, batch 1" in str(error.value)


def test_non_finite_loss_locates_the_batch_holding_a_bad_sample(synthetic) -> None:
    train_data, test_data = synthetic
    x = train_data.x.clone()
    x[123] = float("inf")
    bad_data = TensorData(x, train_data.y, train_data.num_classes, train_data.class_names)
    expected_batch = next(
        i for i, (xb, _) in enumerate(BatchIterator(bad_data, 16, shuffle=True, seed=5), start=1)
        if torch.isinf(xb).any()
    )
    assert expected_batch > 1, "choose a seed where the bad sample is not in the first batch"
    set_seed(0)
    with pytest.raises(NonFiniteLossError) as error:
        train(CustomANN([2, 8, 4]), bad_data, test_data, quiet(epochs=2, batch_size=16, seed=5))
    assert (error.value.epoch, error.value.batch) == (1, expected_batch)


def test_callback_exceptions_propagate(synthetic) -> None:
    train_data, test_data = synthetic
    seen = []

    def stop_at_two(epoch: int, row: dict, model: torch.nn.Module) -> None:
        seen.append(epoch)
        if epoch == 2:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt, match="stop"):
        train(CustomANN([2, 4]), train_data, test_data, quiet(epochs=5), callbacks=[stop_at_two])
    assert seen == [1, 2]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal: the trainer draws bars only on one."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_epoch_batch_and_loss(synthetic, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    train_data, test_data = synthetic
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train(CustomANN([2, 4]), train_data, test_data, TrainConfig(epochs=2, batch_size=8, device="cpu"))
    monkeypatch.undo()
    err = terminal.getvalue()
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "50/50" in err and "loss=" in err
    train(CustomANN([2, 4]), train_data, test_data, quiet(epochs=1, batch_size=8))
    assert capsys.readouterr().err == ""


def test_set_seed_seeds_torch_numpy_and_random() -> None:
    set_seed(11)
    first = (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())
    set_seed(11)
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()) == first


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("learning_rate", 0, "learning_rate"),
        ("learning_rate", -1e-3, "learning_rate"),
        ("learning_rate", float("nan"), "learning_rate"),
        ("learning_rate", float("inf"), "learning_rate"),
        ("epochs", 0, "epochs"),
        ("epochs", 2.5, "epochs"),
        ("batch_size", 0, "batch_size"),
        ("batch_size", -8, "batch_size"),
        ("eval_batch_size", 0, "eval_batch_size"),
        ("max_batches", 0, "max_batches"),
        ("optimizer", "rmsprop", r"'rmsprop'.*\['adam', 'sgd'\]"),
        ("momentum", 1.0, "momentum"),
        ("device", "tpu", "'tpu'.*'auto', 'cpu'"),
        ("device", "gpu", "'gpu'"),
    ],
)
def test_train_config_rejects_bad_values(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match) as error:
        TrainConfig(**{field: value})
    assert repr(value) in str(error.value) or str(value) in str(error.value)


def test_train_rejects_bad_arguments(synthetic) -> None:
    train_data, test_data = synthetic
    with pytest.raises(TypeError, match="TrainConfig"):
        train(CustomANN([2, 4]), train_data, test_data, {"epochs": 1})
    with pytest.raises(TypeError, match="TensorData"):
        train(CustomANN([2, 4]), (train_data.x, train_data.y), test_data, quiet())
    with pytest.raises(TypeError, match="callables"):
        train(CustomANN([2, 4]), train_data, test_data, quiet(), callbacks=["log"])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(CustomANN([2, 4]), test_data, batch_size=0)


def test_hyperparameters_are_the_fields_that_shape_the_model_and_only_those():
    from dataclasses import fields

    from anncore.trainer import TrainConfig

    adam = TrainConfig(epochs=3, batch_size=64, learning_rate=0.01, seed=7, device="cpu", progress=False, max_batches=2)
    assert adam.hyperparameters() == {"epochs": 3, "batch_size": 64, "learning_rate": 0.01, "optimizer": "adam"}
    sgd = TrainConfig(optimizer="sgd", momentum=0.5)
    assert sgd.hyperparameters()["momentum"] == 0.5  # momentum only where the optimizer reads it
    run_options = {f.name for f in fields(TrainConfig) if f.metadata.get("run_option")}
    assert run_options == {"seed", "device", "progress", "max_batches", "eval_batch_size", "track_grad_norms", "cuda_graphs"}


def test_run_settings_fill_in_the_run_options_of_a_train_config():
    from experiments.settings import QUICK_MAX_BATCHES, Invocation, RunSettings

    config = RunSettings(Invocation(seeds=(3, 4), device="cpu", quick=True), progress=False).train_config(epochs=2, learning_rate=0.05)
    assert (config.seed, config.device, config.progress, config.max_batches) == (3, "cpu", False, QUICK_MAX_BATCHES)
    assert (config.epochs, config.learning_rate, config.batch_size) == (2, 0.05, 128)
