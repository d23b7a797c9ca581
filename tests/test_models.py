"""anncore.models: the notebook's networks, CustomANN (TO-DO 3.1) and their bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from anncore.activations import ACTIVATION_NAMES
from anncore.models import (
    CustomANN,
    FashionMNISTClassifier,
    ModelConfig,
    SimpleANN,
    architecture_string,
    parameter_table,
)

HIDDEN_ACTIVATIONS = [name for name in ACTIVATION_NAMES if name != "softmax"]


def dense_parameter_count(layer_sizes: list[int]) -> int:
    """Closed form: sum of fan_in * fan_out weights plus fan_out biases."""
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def test_simple_ann_has_the_notebooks_58_parameters_and_names() -> None:
    model = SimpleANN(input_size=4, hidden_size=8, output_size=2, activation="relu")
    assert model.count_parameters() == 58
    table = parameter_table(model)
    assert table.to_dict("list") == {
        "name": ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"],
        "shape": ["[8, 4]", "[8]", "[2, 8]", "[2]"],
        "count": [32, 8, 16, 2],
    }
    assert model(torch.randn(5, 4)).shape == (5, 2)


def test_simple_ann_forward_is_linear_activation_linear() -> None:
    torch.manual_seed(0)
    model = SimpleANN(3, 5, 2, activation="tanh")
    x = torch.randn(4, 3)
    w1, b1 = model.linear1.weight, model.linear1.bias
    w2, b2 = model.linear2.weight, model.linear2.bias
    expected = torch.tanh(x @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(model(x), expected)
    hidden, output = model.get_layer_outputs(x)
    torch.testing.assert_close(hidden, torch.tanh(x @ w1.T + b1))
    torch.testing.assert_close(output, expected)
    assert model.linear_layers() == [model.linear1, model.linear2]


def test_default_classifier_matches_the_notebook() -> None:
    model = FashionMNISTClassifier()
    assert model.count_parameters() == 567_434 == model.get_num_parameters()
    assert model.count_parameters() == dense_parameter_count([784, 512, 256, 128, 10])
    printed = str(model)
    assert "(2): Dropout(p=0.3, inplace=False)" in printed
    assert "(9): Linear(in_features=128, out_features=10, bias=True)" in printed
    assert model.architecture == "784-512-256-128-10"
    model.eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_classifier_accepts_other_activations() -> None:
    model = FashionMNISTClassifier(hidden_sizes=[64], dropout_rate=0.0, activation="elu")
    assert isinstance(model.network[1], nn.ELU)
    assert model.count_parameters() == dense_parameter_count([784, 64, 10])


@pytest.mark.parametrize(
    "layer_sizes",
    [[784, 128, 64, 10], [784, 256, 10], [784, 128, 64, 32, 16, 10], [2, 4, 4], [3, 1]],
)
def test_custom_ann_parameter_count_and_layer_output_shapes(layer_sizes: list[int]) -> None:
    model = CustomANN(layer_sizes, activation="relu")
    assert model.count_parameters() == dense_parameter_count(layer_sizes)
    assert [(m.in_features, m.out_features) for m in model.linear_layers()] == list(
        zip(layer_sizes[:-1], layer_sizes[1:])
    )
    x = torch.randn(6, layer_sizes[0])
    outputs = model.get_layer_outputs(x)
    assert [tuple(o.shape) for o in outputs] == [(6, size) for size in layer_sizes[1:]]
    torch.testing.assert_close(outputs[-1], model(x))


def test_layer_outputs_are_the_post_activation_values() -> None:
    torch.manual_seed(1)
    model = CustomANN([5, 4, 3, 2], activation="sigmoid", output_activation="softmax")
    x = torch.randn(7, 5)
    (l1, l2, l3) = model.linear_layers()
    h1 = torch.sigmoid(x @ l1.weight.T + l1.bias)
    h2 = torch.sigmoid(h1 @ l2.weight.T + l2.bias)
    out = torch.softmax(h2 @ l3.weight.T + l3.bias, dim=-1)
    for got, expected in zip(model.get_layer_outputs(x), (h1, h2, out)):
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(model(x).sum(dim=1), torch.ones(7))


def test_images_are_flattened() -> None:
    torch.manual_seed(2)
    model = CustomANN([784, 16, 10])
    images = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(model(images), model(images.reshape(3, 784)))
    assert [o.shape[1] for o in model.get_layer_outputs(images)] == [16, 10]


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_every_registry_activation_works_in_custom_ann(activation: str) -> None:
    torch.manual_seed(3)
    model = CustomANN([4, 6, 3], activation=activation)
    x = torch.randn(8, 4) * 3
    layer = model.linear_layers()[0]
    z = x @ layer.weight.T + layer.bias
    reference = {
        "sigmoid": torch.sigmoid(z),
        "tanh": torch.tanh(z),
        "relu": z.clamp(min=0),
        "leaky_relu": torch.where(z > 0, z, 0.01 * z),
        "elu": torch.where(z > 0, z, torch.expm1(z)),
        "identity": z,
    }[activation]
    torch.testing.assert_close(model.get_layer_outputs(x)[0], reference)


def test_dropout_only_in_training_mode() -> None:
    torch.manual_seed(4)
    model = CustomANN([10, 50, 2], dropout_rate=0.5)
    x = torch.randn(20, 10)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    first = model.linear_layers()[0]
    hidden = torch.relu(x @ first.weight.T + first.bias).detach()  # the layer's output, by hand
    dropped = model.network[:3](x).detach()  # Linear -> ReLU -> Dropout, in training mode
    kept = dropped != 0
    # Inverted dropout: each unit is zeroed with p = 0.5, the others scaled by 1 / (1 - p) = 2.
    torch.testing.assert_close(dropped[kept], 2 * hidden[kept])
    active = hidden > 0
    share_dropped = (active & ~kept).sum() / active.sum()
    assert 0.4 < share_dropped < 0.6, share_dropped  # ~500 active units: 0.5 +- 0.07 is 3 sd
    assert not torch.equal(model(x), model(x))  # a new mask on every call
    model.eval()
    torch.testing.assert_close(model.network[:3](x), hidden)  # evaluation: no dropping, no scaling
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.network)
    assert not any(isinstance(m, nn.Dropout) for m in CustomANN([10, 5, 2]).network)


def test_architecture_string() -> None:
    assert architecture_string([784, 128, 64, 10]) == "784-128-64-10"
    assert architecture_string((2, 4, 4)) == "2-4-4"


@pytest.mark.parametrize(
    "layer_sizes, error, match",
    [
        ([10], ValueError, "at least 2"),
        ([], ValueError, "at least 2"),
        ([10, 0, 2], ValueError, r"layer_sizes\[1\].*0"),
        ([10, -5, 2], ValueError, r"layer_sizes\[1\].*-5"),
        ([10, 2.5, 2], TypeError, r"layer_sizes\[1\].*2.5"),
        ([10, True, 2], TypeError, r"layer_sizes\[1\]"),
        ("784-10", TypeError, "784-10"),
        (784, TypeError, "784"),
    ],
)
def test_custom_ann_rejects_bad_layer_sizes(layer_sizes: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        CustomANN(layer_sizes)


@pytest.mark.parametrize(
    "rate, error", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError), ("0.3", TypeError)]
)
def test_dropout_outside_unit_interval_is_rejected(rate: object, error: type) -> None:
    with pytest.raises(error, match=r"dropout_rate.*\[0, 1\)"):
        CustomANN([4, 3, 2], dropout_rate=rate)
    with pytest.raises(error, match=r"dropout_rate.*\[0, 1\)"):
        FashionMNISTClassifier(dropout_rate=rate)


def test_unknown_activation_is_rejected_with_the_accepted_names() -> None:
    for build in (lambda: CustomANN([4, 2], activation="swish"), lambda: SimpleANN(4, 8, 2, "swish"),
                  lambda: CustomANN([4, 2], output_activation="swish")):  # fmt: skip
        with pytest.raises(ValueError, match="swish.*relu"):
            build()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"hidden_sizes": [512, 0]}, ValueError),
        ({"hidden_sizes": 512}, TypeError),
        ({"num_classes": 0}, ValueError),
    ],
)
def test_classifier_rejects_bad_sizes(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        FashionMNISTClassifier(**kwargs)


@pytest.mark.parametrize("sizes", [(0, 8, 2), (4, -1, 2), (4, 8, 2.0)])
def test_simple_ann_rejects_bad_sizes(sizes: tuple) -> None:
    with pytest.raises((ValueError, TypeError), match="_size"):
        SimpleANN(*sizes)


def test_fast_dropout_keeps_one_minus_p_and_scales_like_nn_dropout():
    from anncore.models import Dropout

    torch.manual_seed(0)
    layer = Dropout(0.3)
    x = torch.full((200, 500), 2.0, requires_grad=True)
    y = layer(x)
    kept = y != 0
    # kept entries are scaled by 1 / (1 - p), dropped ones are exactly 0
    assert torch.allclose(y[kept], torch.full_like(y[kept], 2.0 / 0.7))
    # 100,000 Bernoulli(0.7) draws: the kept fraction is within 5 standard errors of 0.7
    assert abs(kept.float().mean().item() - 0.7) < 5 * (0.7 * 0.3 / 1e5) ** 0.5
    # the gradient is the same mask and scale
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() / 0.7)
    layer.eval()
    assert torch.equal(layer(x), x)
    assert repr(layer) == repr(torch.nn.Dropout(0.3))


def test_model_config_rebuilds_the_same_network_and_names_it() -> None:
    original = FashionMNISTClassifier((64, 32), dropout_rate=0.25, activation="tanh")
    config = original.config
    assert config == ModelConfig((784, 64, 32, 10), "tanh", 0.25)
    assert config.hyperparameters() == {"architecture": "784-64-32-10", "activation": "tanh", "dropout_rate": 0.25}
    torch.manual_seed(0)
    rebuilt = config.build()
    assert rebuilt.config == config
    assert rebuilt.count_parameters() == 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    # the same modules in the same places: the classifier's weights load into the rebuilt network
    rebuilt.load_state_dict(original.state_dict())
    x = torch.randn(3, 784)
    assert torch.equal(rebuilt.eval()(x), original.eval()(x))
