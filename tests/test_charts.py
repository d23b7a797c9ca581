"""Tests for charts/: valid specs, what the charts really draw, offline export, headless Chromium.

What a chart draws is read from vl-convert's scenegraph (Vega run headless on the spec): the
mark items with their pixel positions and ARIA descriptions. Expected values come from the
input tables, closed forms or anncore.activations, never from charts/ itself.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import pytest
import vl_convert

from experiments import charts
from anncore.activations import elu, elu_derivative, get_activation, leaky_relu, relu
from experiments.charts import export
from experiments.charts.search import optimization_history, parameter_panels
from tests.external_tools import find, requires

needs_chromium = requires("chromium")


# ----------------------------------------------------------------------------- input tables


def activation_table(z: np.ndarray) -> pd.DataFrame:
    """activations.csv layout, computed with anncore.activations (independent of charts/)."""
    variants = [("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.01), ("elu", 1.0), ("elu", 2.0)]
    frames = []
    for name, alpha in variants:
        act = get_activation(name) if alpha is None else get_activation(name, alpha=alpha)
        frames.append(pd.DataFrame({
            "function": name, "alpha": np.nan if alpha is None else alpha, "z": z,
            "value": act.fn(z), "derivative": act.derivative(z), "numerical_derivative": act.derivative(z),
        }))
    return pd.concat(frames, ignore_index=True)


ACTIVATIONS = activation_table(np.linspace(-5, 5, 41))
ACTIVATION_LABELS = ["elu (α=1)", "elu (α=2)", "leaky_relu (α=0.01)", "relu", "sigmoid", "tanh"]

HISTORY = pd.DataFrame({
    "epoch": [1, 2, 3, 4],
    "train_loss": [1.2, 0.8, 0.6, 0.5], "train_acc": [0.55, 0.71, 0.78, 0.81],
    "test_loss": [1.0, 0.85, 0.7, 0.66], "test_acc": [0.6, 0.7, 0.74, 0.77],
    "epoch_time_s": 1.5, "samples_per_sec": 5000.0,
})


def curves_table() -> pd.DataFrame:
    """curves.csv layout: two arms, two seeds each, different numbers per seed."""
    frames = []
    for arm, shift in (("relu", 0.0), ("sigmoid", -0.2)):
        for seed, jitter in ((0, 0.0), (1, 0.04)):
            frame = HISTORY.copy()
            for column in ("train_acc", "test_acc"):
                frame[column] = frame[column] + shift + jitter
            frame["train_loss"] = frame["train_loss"] * (1 + seed)
            frames.append(frame.assign(arm=arm, seed=seed))
    return pd.concat(frames, ignore_index=True)


SUMMARY = pd.DataFrame({
    "arm": ["shallow", "medium", "deep"],
    "mean_final_test_acc": [0.8512, 0.8634, 0.8421], "std_final_test_acc": [0.01, 0.004, 0.02],
    "mean_train_time_s": [10.5, 12.25, 15.0], "std_train_time_s": [0.5, 0.25, 1.0],
    "n_seeds": [3, 3, 3],
})


def grad_norm_table(layers=("layer1", "layer2", "layer10")) -> pd.DataFrame:
    rows = [
        {"arm": arm, "seed": seed, "epoch": epoch, "layer": layer,
         "grad_norm": scale * (index + 1) * epoch * (1 + seed)}
        for arm, scale in (("relu", 1.0), ("sigmoid", 0.001))
        for seed in (0, 1) for epoch in (1, 2, 3) for index, layer in enumerate(layers)
    ]
    return pd.DataFrame(rows)


def decision_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    axis = np.linspace(-2, 2, 9)
    x1, x2 = np.meshgrid(axis, axis)
    grid = pd.DataFrame({"x1": x1.ravel(), "x2": x2.ravel()})
    grid["predicted"] = (grid["x1"] > 0).astype(int) + 2 * (grid["x2"] > 0).astype(int)
    points = pd.DataFrame({"x1": [-1.0, 1.0, -1.0, 1.0, 0.5], "x2": [-1.0, -1.0, 1.0, 1.0, -0.5],
                           "label": [0, 1, 2, 3, 3], "predicted": [0, 1, 2, 3, 1],
                           "confidence": [0.9, 0.8, 0.95, 0.7, 0.55]})
    return grid, points


CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover"]
PER_CLASS = pd.DataFrame({"class_index": [0, 1, 2], "class_name": CLASS_NAMES,
                          "correct": [80, 95, 70], "total": [100, 100, 100], "accuracy": [0.8, 0.95, 0.7]})
CONFUSION = pd.DataFrame([[80, 5, 15], [2, 95, 3], [20, 10, 70]], index=CLASS_NAMES, columns=CLASS_NAMES)
PIPELINE_FIGURES = pd.DataFrame({"pipeline": ["notebook", "floor", "anncore", "anncore_mlflow"],
                                 "seconds_per_60000_images": [77.714, 68.48, 1234.5, 2.3549],
                                 "description": ["per-sample transforms", "bare loop", "trainer", "trainer + MLflow"]})

BUILDERS = {
    "activation_curves": lambda: charts.activation_curves(ACTIVATIONS),
    "activation_comparison": lambda: charts.activation_comparison(ACTIVATIONS),
    "elu_alpha_explorer": lambda: charts.elu_alpha_explorer(),
    "training_curves": lambda: charts.training_curves(HISTORY),
    "training_curves_by_arm": lambda: charts.training_curves(curves_table(), color="arm"),
    "arm_comparison": lambda: charts.arm_comparison(SUMMARY, "final_test_acc", "Test accuracy"),
    "grad_norm_curves": lambda: charts.grad_norm_curves(grad_norm_table()),
    "decision_regions": lambda: charts.decision_regions(*decision_tables()),
    "per_class_accuracy": lambda: charts.per_class_accuracy(PER_CLASS),
    "confusion_matrix": lambda: charts.confusion_matrix(CONFUSION),
    "pipeline_seconds": lambda: charts.pipeline_seconds(PIPELINE_FIGURES),
}


# ----------------------------------------------------------------------------- scenegraph


def rendered_marks(chart_or_spec) -> list[dict]:
    """Every mark node Vega draws for the spec: ``{"name", "marktype", "items"}``, in scene order."""
    spec = chart_or_spec if isinstance(chart_or_spec, dict) else chart_or_spec.to_dict()
    scene = vl_convert.vegalite_to_scenegraph(spec, vl_version=export.VEGA_LITE_VERSION)
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("role") == "mark":
                found.append({"name": node.get("name"), "marktype": node["marktype"], "items": node["items"]})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(scene["scenegraph"])
    return found


def marks_named(marks: list[dict], prefix: str, marktype: str) -> list[dict]:
    return [m for m in marks if (m["name"] or "").startswith(prefix) and m["marktype"] == marktype]


def description_field(item: dict, field: str) -> str:
    """A field's text in a mark item's ARIA description ("a: 1; b: x")."""
    match = re.search(rf"(?:^|; ){re.escape(field)}: ([^;]*)", item["description"])
    assert match, f"{field!r} not in {item['description']!r}"
    return match.group(1)


def assert_affine(pixels, values) -> None:
    """Pixel positions are one linear scale of the expected values (same scale, same order)."""
    pixels, values = np.asarray(pixels, float), np.asarray(values, float)
    slope, intercept = np.polyfit(values, pixels, 1)
    np.testing.assert_allclose(slope * values + intercept, pixels, atol=1e-6)
    assert abs(slope) > 1e-9


def inverted(pixel_y, domain, height) -> np.ndarray:
    """Data values of pixel ys on a linear y scale from ``domain`` to [height, 0]."""
    low, high = domain
    return low + (height - np.asarray(pixel_y, float)) / height * (high - low)


def spec_with_params(chart, **values) -> dict:
    """The chart's spec with top-level params set, as a reader moving its widgets would."""
    spec = chart.to_dict()
    for param in spec["params"]:
        if param["name"] in values:
            param["value"] = values.pop(param["name"])
    assert not values, f"no such params: {values}"
    return spec


# ----------------------------------------------------------------------------- every builder


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_returns_valid_vega_lite_that_draws_marks(name):
    chart = BUILDERS[name]()
    spec = chart.to_dict(validate=True)
    assert spec["$schema"].endswith(f"{alt.SCHEMA_VERSION}.json")
    drawn = [m for m in rendered_marks(spec) if m["items"]]
    assert drawn, f"{name} draws no marks"


# ----------------------------------------------------------------------------- activations


def test_activation_curves_draw_every_function_and_derivative_with_all_points():
    marks = rendered_marks(charts.activation_curves(ACTIVATIONS))
    for panel, field in (("concat_0", "f(z)"), ("concat_1", "f′(z)")):
        lines = marks_named(marks, panel, "line")
        labels = sorted(description_field(line["items"][0], "function") for line in lines)
        assert labels == ACTIVATION_LABELS
        assert all(len(line["items"]) == 41 for line in lines)
    sigmoid = next(line for line in marks_named(marks, "concat_0", "line")
                   if description_field(line["items"][0], "function") == "sigmoid")
    # Pixels follow sigmoid(z) through one linear scale.
    z = np.linspace(-5, 5, 41)
    assert_affine([item["y"] for item in sigmoid["items"]], 1 / (1 + np.exp(-z)))


def test_activation_comparison_dropdowns_offer_the_functions_in_the_data():
    spec = charts.activation_comparison(ACTIVATIONS).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert set(params) == {"function_a", "function_b"}
    for param in params.values():
        assert param["bind"]["input"] == "select"
        assert sorted(param["bind"]["options"]) == ACTIVATION_LABELS
    assert (params["function_a"]["value"], params["function_b"]["value"]) == ("sigmoid", "relu")



def test_russian_activation_labels_write_decimal_commas():
    """Labels the builders make from numbers follow the chart's language (its axes follow the
    d3-format locale the caller renders with)."""
    spec = charts.activation_comparison(ACTIVATIONS, language="ru").to_dict()
    assert sorted(spec["params"][0]["bind"]["options"]) == [label.replace("0.01", "0,01") for label in ACTIVATION_LABELS]
    explorer = json.dumps(charts.elu_alpha_explorer(language="ru").to_dict(), ensure_ascii=False)
    assert "Leaky ReLU (α=0,01)" in explorer and "Leaky ReLU (α=0.01)" not in explorer

@pytest.mark.parametrize("choice", [("sigmoid", "relu"), ("tanh", "elu (α=2)"), ("relu", "leaky_relu (α=0.01)")])
def test_activation_comparison_draws_exactly_the_two_chosen_functions(choice):
    chart = charts.activation_comparison(ACTIVATIONS)
    marks = rendered_marks(spec_with_params(chart, function_a=choice[0], function_b=choice[1]))
    for panel in ("concat_0", "concat_1"):
        drawn = {description_field(line["items"][0], "function") for line in marks_named(marks, panel, "line")}
        assert drawn == set(choice)


def test_activation_comparison_needs_two_functions():
    only_relu = ACTIVATIONS[ACTIVATIONS["function"] == "relu"]
    with pytest.raises(ValueError, match=r"at least two functions.*relu"):
        charts.activation_comparison(only_relu)


def test_elu_explorer_has_an_alpha_slider_from_0_1_to_2_0():
    spec = charts.elu_alpha_explorer().to_dict()
    (param,) = spec["params"]
    assert param["name"] == "alpha"
    assert param["bind"]["input"] == "range"
    assert (param["bind"]["min"], param["bind"]["max"]) == (0.1, 2.0)
    assert param["value"] == 1.0  # the documented default, ELU's usual alpha
    assert charts.elu_alpha_explorer(alpha=0.5).to_dict()["params"][0]["value"] == 0.5


@pytest.mark.parametrize("alpha", [0.1, 0.37, 1.0, 1.55, 2.0])
def test_elu_explorer_vega_expressions_match_anncore(alpha):
    """Vega evaluates the chart's expressions for a slider value; the drawn curves equal anncore's."""
    z = np.linspace(-4, 3, 57)
    chart = charts.elu_alpha_explorer(z=z)
    spec = spec_with_params(chart, alpha=alpha)
    value_panel, derivative_panel = spec["hconcat"]
    value_domain = value_panel["layer"][0]["encoding"]["y"]["scale"]["domain"]
    derivative_domain = derivative_panel["encoding"]["y"]["scale"]["domain"]
    expected_values = {"ELU": elu(z, alpha), "ReLU": relu(z), "Leaky ReLU (α=0.01)": leaky_relu(z, 0.01)}
    expected_slopes = {"ELU": elu_derivative(z, alpha), "ReLU": np.where(z > 0, 1.0, 0.0),
                       "Leaky ReLU (α=0.01)": np.where(z > 0, 1.0, 0.01)}

    marks = rendered_marks(spec)
    for prefix, domain, height, expected in (
        ("concat_0_layer_0", value_domain, value_panel["height"], expected_values),
        ("concat_1", derivative_domain, derivative_panel["height"], expected_slopes),
    ):
        lines = {description_field(m["items"][0], "function"): m for m in marks_named(marks, prefix, "line")}
        assert set(lines) == set(expected)
        for function, line in lines.items():
            drawn_z = [float(description_field(item, "z").replace("−", "-")) for item in line["items"]]
            np.testing.assert_allclose(drawn_z, z, atol=5e-4)  # tooltip z has 3 decimals
            values = inverted([item["y"] for item in line["items"]], domain, height)
            np.testing.assert_allclose(values, expected[function], atol=1e-9, err_msg=function)

    (bound,) = marks_named(marks, "concat_0_layer_1", "rule")
    (rule,) = bound["items"]
    np.testing.assert_allclose(inverted(rule["y"], value_domain, value_panel["height"]), -alpha, atol=1e-9)


def test_elu_explorer_axes_hold_every_curve_the_slider_can_reach():
    z = np.linspace(-6, 4, 11)
    spec = charts.elu_alpha_explorer(z=z).to_dict()
    low, high = spec["hconcat"][0]["layer"][0]["encoding"]["y"]["scale"]["domain"]
    assert low <= float(elu(-6.0, 2.0)) and high >= 4.0
    d_low, d_high = spec["hconcat"][1]["encoding"]["y"]["scale"]["domain"]
    assert d_low <= 0 and d_high >= 2.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"alpha": 2.5}, ValueError, r"alpha must be a number in \[0.1, 2.0\], got 2.5"),
        ({"alpha": 0.05}, ValueError, r"got 0.05"),
        ({"z": [1.0]}, ValueError, r"at least two finite numbers"),
        ({"z": [0.0, np.nan]}, ValueError, r"at least two finite numbers"),
        ({"z": "abc"}, TypeError, r"z must be a sequence of numbers, got str"),
        ({"leaky_alpha": float("inf")}, ValueError, r"leaky_alpha must be a finite number, got inf"),
    ],
)
def test_elu_explorer_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        charts.elu_alpha_explorer(**kwargs)


# ----------------------------------------------------------------------------- training curves


def test_training_curves_draw_train_and_test_loss_and_accuracy():
    marks = rendered_marks(charts.training_curves(HISTORY))
    for panel, quantity in (("concat_0", "loss"), ("concat_1", "acc")):
        lines = marks_named(marks, panel, "line")
        by_split = {description_field(line["items"][0], "split"): line for line in lines}
        assert set(by_split) == {"train", "test"}
        pixels = [item["y"] for split in ("train", "test") for item in by_split[split]["items"]]
        values = [v for split in ("train", "test") for v in HISTORY[f"{split}_{quantity}"]]
        assert_affine(pixels, values)
        assert [int(description_field(i, "epoch")) for i in by_split["train"]["items"]] == [1, 2, 3, 4]
    accuracy_texts = [description_field(item, "accuracy") for line in marks_named(marks, "concat_1", "line")
                      for item in line["items"]]
    assert all(text.endswith("%") for text in accuracy_texts)


def test_training_curves_by_arm_average_the_seeds():
    table = curves_table()
    marks = rendered_marks(charts.training_curves(table, color="arm"))
    lines = marks_named(marks, "concat_1", "line")
    assert len(lines) == 4  # two arms x train/test
    expected_mean = table.groupby(["arm", "epoch"])[["train_acc", "test_acc"]].mean()
    pixels, values = [], []
    for line in lines:
        arm, split = description_field(line["items"][0], "arm"), description_field(line["items"][0], "split")
        for item in line["items"]:
            pixels.append(item["y"])
            values.append(expected_mean.loc[(arm, int(description_field(item, "epoch"))), f"{split}_acc"])
    assert_affine(pixels, values)


def test_training_curves_reject_missing_columns_and_bad_color():
    with pytest.raises(ValueError, match=r"missing columns \['test_acc'\]"):
        charts.training_curves(HISTORY.drop(columns=["test_acc"]))
    with pytest.raises(ValueError, match=r"missing columns \['arm'\]"):
        charts.training_curves(HISTORY, color="arm")
    with pytest.raises(TypeError, match="history must be a pandas DataFrame, got list"):
        charts.training_curves([1, 2, 3])
    with pytest.raises(ValueError, match="history has no rows"):
        charts.training_curves(HISTORY.iloc[:0])


# ----------------------------------------------------------------------------- comparisons


def test_arm_comparison_labels_bars_in_percent_with_std_error_bars():
    marks = rendered_marks(charts.arm_comparison(SUMMARY, "final_test_acc", "Test accuracy"))
    (labels,) = [m for m in marks if m["marktype"] == "text"]
    assert [item["text"] for item in labels["items"]] == ["85.12%", "86.34%", "84.21%"]
    (bars,) = [m for m in marks if m["marktype"] == "rect" and "bar" in str(m["items"][0].get("ariaRoleDescription"))]
    assert_affine([bar["y"] for bar in bars["items"]], SUMMARY["mean_final_test_acc"])
    (error_bars,) = [m for m in marks if m["marktype"] == "rule"]
    for item, (_, row) in zip(error_bars["items"], SUMMARY.iterrows()):
        assert float(description_field(item, "low")) == pytest.approx(row.mean_final_test_acc - row.std_final_test_acc)
        assert float(description_field(item, "high")) == pytest.approx(row.mean_final_test_acc + row.std_final_test_acc)


def test_arm_comparison_has_no_error_bars_for_one_seed_or_no_std():
    one_seed = SUMMARY.assign(n_seeds=1)
    no_std = SUMMARY.drop(columns=["std_train_time_s"])
    for chart in (charts.arm_comparison(one_seed, "final_test_acc", "t"),
                  charts.arm_comparison(no_std, "train_time_s", "Training time")):
        assert not [m for m in rendered_marks(chart) if m["marktype"] == "rule"]
    (labels,) = [m for m in rendered_marks(charts.arm_comparison(no_std, "train_time_s", "t"))
                 if m["marktype"] == "text"]
    assert [item["text"] for item in labels["items"]] == ["10.5", "12.25", "15"]  # seconds, not %


def test_arm_comparison_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match=r"missing columns \['mean_final_acc'\]"):
        charts.arm_comparison(SUMMARY, "final_acc", "t")
    with pytest.raises(ValueError, match="metric must be a non-empty metric name"):
        charts.arm_comparison(SUMMARY, "", "t")


def test_grad_norm_panels_are_titled_in_the_charts_language():
    spec = charts.grad_norm_curves(grad_norm_table(), language="ru").to_dict()
    assert spec["facet"]["column"]["sort"] == ["слой 1", "слой 2", "слой 10"]


def test_grad_norm_curves_one_panel_per_layer_in_numeric_order_on_a_log_scale():
    table = grad_norm_table()
    chart = charts.grad_norm_curves(table)
    spec = chart.to_dict()
    assert spec["facet"]["column"]["sort"] == ["layer 1", "layer 2", "layer 10"]  # logged as layer1, ...
    assert spec["spec"]["encoding"]["y"]["scale"]["type"] == "log"
    lines = [m for m in rendered_marks(chart) if m["marktype"] == "line"]
    assert len(lines) == 3 * 2  # layers x arms
    mean = table.groupby(["arm", "layer", "epoch"])["grad_norm"].mean()
    pixels, logs = [], []
    for line in lines:
        for item in line["items"]:
            layer = description_field(item, "layer").replace("layer ", "layer")
            key = (description_field(item, "arm"), layer, int(description_field(item, "epoch")))
            pixels.append(item["y"])
            logs.append(np.log10(mean.loc[key]))
    assert_affine(pixels, logs)


def test_grad_norm_curves_use_a_linear_scale_when_a_norm_is_zero():
    table = grad_norm_table()
    table.loc[0, "grad_norm"] = 0.0
    assert charts.grad_norm_curves(table).to_dict()["spec"]["encoding"]["y"]["scale"].get("type") is None


# ----------------------------------------------------------------------------- synthetic, classes


def test_decision_regions_tile_the_grid_and_mark_misclassified_points():
    grid, points = decision_tables()
    marks = rendered_marks(charts.decision_regions(grid, points))
    (cells,) = [m for m in marks if m["marktype"] == "rect"]
    assert len(cells["items"]) == len(grid)
    widths = {round(item["width"], 6) for item in cells["items"]}
    assert len(widths) == 1  # a regular grid: equal cells
    assert sum(item["width"] * item["height"] for item in cells["items"]) == pytest.approx(400 * 400)
    (dots,) = [m for m in marks if m["marktype"] == "symbol"]
    shapes = [item["shape"] for item in dots["items"]]
    assert shapes.count("cross") == int((points["label"] != points["predicted"]).sum()) == 1
    assert len(shapes) == len(points)


def test_per_class_accuracy_labels_each_class_in_table_order():
    marks = rendered_marks(charts.per_class_accuracy(PER_CLASS))
    (labels,) = [m for m in marks if m["marktype"] == "text"]
    assert [item["text"] for item in labels["items"]] == ["80.0%", "95.0%", "70.0%"]
    assert [item["y"] for item in labels["items"]] == sorted(item["y"] for item in labels["items"])


def test_confusion_matrix_shows_every_count_in_its_cell():
    marks = rendered_marks(charts.confusion_matrix(CONFUSION, title="Baseline"))
    (numbers,) = [m for m in marks if m["marktype"] == "text"]
    cells = {(description_field(i, "true class"), description_field(i, "predicted class")): i for i in numbers["items"]}
    for true in CLASS_NAMES:
        for predicted in CLASS_NAMES:
            assert cells[(true, predicted)]["text"] == str(CONFUSION.loc[true, predicted])
    # Rows top to bottom and columns left to right follow the class order.
    assert cells[("T-shirt/top", "Trouser")]["y"] < cells[("Pullover", "Trouser")]["y"]
    assert cells[("Trouser", "T-shirt/top")]["x"] < cells[("Trouser", "Pullover")]["x"]
    # Colour is the share of the true class (80/100 is dark, so its number is white).
    assert cells[("T-shirt/top", "T-shirt/top")]["fill"] == "white"
    assert cells[("T-shirt/top", "Pullover")]["fill"] == "black"


def test_confusion_matrix_rejects_mismatched_labels():
    with pytest.raises(ValueError, match=r"same class names.*index_col=0"):
        charts.confusion_matrix(CONFUSION.reset_index())


# ----------------------------------------------------------------------------- performance


def test_pipeline_seconds_draws_a_labelled_bar_per_pipeline_in_table_order():
    marks = rendered_marks(charts.pipeline_seconds(PIPELINE_FIGURES))
    (bars,) = [m for m in marks if m["marktype"] == "rect"]
    (labels,) = [m for m in marks if m["marktype"] == "text"]
    seconds = PIPELINE_FIGURES["seconds_per_60000_images"]
    assert [description_field(bar, "pipeline") for bar in bars["items"]] == list(PIPELINE_FIGURES["pipeline"])
    assert [bar["y"] for bar in bars["items"]] == sorted(bar["y"] for bar in bars["items"])  # top to bottom
    assert_affine([bar["x"] + bar["width"] for bar in bars["items"]], seconds)
    assert {bar["x"] for bar in bars["items"]} == {0}  # bars start at zero seconds
    assert [item["text"] for item in labels["items"]] == ["77.7", "68.5", "1,230", "2.35"]  # 3 significant digits
    assert description_field(bars["items"][0], "what it runs") == "per-sample transforms"


def test_pipeline_seconds_rejects_missing_columns_and_bad_times():
    with pytest.raises(ValueError, match=r"missing columns \['seconds_per_60000_images'\]"):
        charts.pipeline_seconds(PIPELINE_FIGURES[["pipeline"]])
    for bad in (float("nan"), -1.0, float("inf")):
        table = PIPELINE_FIGURES.assign(seconds_per_60000_images=[1.0, bad, 2.0, 3.0])
        with pytest.raises(ValueError, match="finite numbers >= 0; got floor="):
            charts.pipeline_seconds(table)


# ----------------------------------------------------------------------------- architecture search

TRIALS = pd.DataFrame({  # a trials.csv: complete, pruned (at its last reported value) and failed trials
    "number": [0, 1, 2, 3, 4, 5],
    "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE"],
    "value": [0.61, 0.55, np.nan, 0.72, np.nan, 0.70],
    "last_val_acc": [0.61, 0.55, 0.40, 0.72, np.nan, 0.70],
    "architecture": ["784-64-10", "784-32-10", "784-16-10", "784-128-64-10", "784-8-10", "784-256-10"],
    "epochs_run": [2, 2, 1, 2, 0, 2],
    "param_n_hidden_layers": [1, 1, 1, 2, 1, 1],
    "param_width_1": [64, 32, 16, 128, 8, 256],
    "param_activation": ["relu", "tanh", "elu", "relu", "sigmoid", "gelu"],
    "param_dropout": [0.1, 0.2, 0.0, 0.3, 0.4, 0.05],
    "param_learning_rate": [1e-3, 3e-4, 1e-2, 2e-3, 5e-2, 1e-4],
    "param_batch_size": [64, 128, 64, 128, 256, 64],
})


def test_optimization_history_draws_each_trial_and_the_running_best():
    from experiments.charts.search import optimization_history

    marks = rendered_marks(optimization_history(TRIALS))
    (points,) = [m for m in marks if m["marktype"] == "symbol"]
    (line,) = [m for m in marks if m["marktype"] == "line"]
    # One point per trial that reported an accuracy (the failed one did not), at that accuracy.
    drawn = {int(description_field(item, "trial")): description_field(item, "validation accuracy")
             for item in points["items"]}
    assert drawn == {0: "61%", 1: "55%", 2: "40%", 3: "72%", 5: "70%"}  # as the axis writes them
    # The line: the best complete value so far at each complete trial (the pruned one does not count).
    running_best = [0.61, 0.61, 0.72, 0.72]  # trials 0, 1, 3, 5
    assert len(line["items"]) == len(running_best)
    assert_affine([item["x"] for item in line["items"]], [0, 1, 3, 5])
    assert_affine([item["y"] for item in line["items"]], [-v for v in running_best])  # y grows downwards
    by_trial = {int(description_field(item, "trial")): item for item in points["items"]}
    assert_affine([by_trial[n]["y"] for n in (0, 1, 2, 3, 5)], [-0.61, -0.55, -0.40, -0.72, -0.70])


def test_parameter_panels_draw_each_trial_against_each_parameter():
    from experiments.charts.search import parameter_panels

    parameters = ["n_hidden_layers", "width_1", "activation", "dropout", "learning_rate", "batch_size"]
    panels = [m for m in rendered_marks(parameter_panels(TRIALS, parameters)) if m["marktype"] == "symbol"]
    assert len(panels) == len(parameters)
    for panel in panels:
        drawn = sorted(int(description_field(item, "trial")) for item in panel["items"])
        assert drawn == [0, 1, 2, 3, 5]


# ----------------------------------------------------------------------------- export


def test_to_svg_contains_drawn_marks():
    svg = export.to_svg(charts.training_curves(HISTORY))
    assert svg.startswith("<svg")
    paths = re.findall(r'class="mark-line[^"]*".*?<path[^>]*\sd="([^"]+)"', svg)
    assert paths and all(len(d) > 10 for d in paths)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_save_png_writes_a_png_at_the_requested_scale(tmp_path):
    chart = charts.per_class_accuracy(PER_CLASS)
    one = export.save_png(chart, tmp_path / "one.png", scale=1)
    two = export.save_png(chart, tmp_path / "nested" / "two.png")  # default scale 2, folders made
    w1, h1 = png_size(one.read_bytes())
    w2, h2 = png_size(two.read_bytes())
    assert (w2, h2) == (2 * w1, 2 * h1)
    with pytest.raises(ValueError, match="scale must be a positive number, got 0"):
        export.save_png(chart, tmp_path / "bad.png", scale=0)


def test_export_rejects_what_is_not_a_chart(tmp_path):
    with pytest.raises(TypeError, match="chart must be an Altair top-level chart.*got dict"):
        export.to_svg({"mark": "bar"})
    with pytest.raises(TypeError, match="path must be a str or pathlib.Path, got int"):
        export.save_html(charts.training_curves(HISTORY), 3)


def test_save_html_inlines_the_javascript_and_loads_nothing_remote(tmp_path):
    path = export.save_html(charts.training_curves(HISTORY), tmp_path / "curves.html")
    html = path.read_text(encoding="utf-8")
    assert "window.vegaEmbed" in html  # vl-convert's bundle is in the page
    assert not re.search(r"""<(script|link)[^>]+(src|href)=""", html)
    assert '"renderer": "svg"' in html


def test_inline_vega_scripts_is_one_script_element_defining_vega_embed():
    scripts = export.inline_vega_scripts()
    assert scripts.count("<script") == 1 and scripts.rstrip().endswith("</script>")
    assert scripts.count("</script") == 1
    assert "window.vegaEmbed" in scripts and "window.vega" in scripts


def test_chart_html_fragment_embeds_the_spec_and_checks_the_id():
    chart = charts.per_class_accuracy(PER_CLASS.assign(class_name=["</script>", "b", "c"]))
    fragment = export.chart_html_fragment(chart, "per-class_1")
    assert fragment.startswith('<div class="vega-chart" id="per-class_1"></div>')
    assert fragment.count("</script>") == 1  # a class name cannot close the script early
    for bad in ("1abc", "a b", "x\"><script>", ""):
        with pytest.raises(ValueError, match="div_id must be a letter followed by"):
            export.chart_html_fragment(chart, bad)


# ----------------------------------------------------------------------------- headless Chromium


def chromium_dom(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after Chromium ran its scripts, with every network request refused."""
    result = subprocess.run(
        [
            find("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def drawn_svgs(dom: str) -> list[str]:
    """The Vega SVGs in a DOM (vega-embed's own icons excluded)."""
    return re.findall(r'<svg[^>]*class="marks".*?</svg>', dom, flags=re.S)


def mark_paths(svg: str, marktype: str) -> list[str]:
    """The ``d`` of each path inside the svg's ``mark-<marktype>`` groups."""
    groups = re.findall(rf'<g[^>]*class="mark-{marktype} role-mark[^"]*"[^>]*>(.*?)</g>', svg, flags=re.S)
    return [d for group in groups for d in re.findall(r'<path[^>]*\sd="([^"]+)"', group)]


@needs_chromium
def test_save_html_draws_in_chromium_offline(tmp_path):
    page = export.save_html(charts.training_curves(HISTORY), tmp_path / "curves.html")
    (svg,) = drawn_svgs(chromium_dom(page, tmp_path))
    lines = mark_paths(svg, "line")
    assert len(lines) == 4 and all(d.count("L") == 3 for d in lines)  # 4 curves through 4 epochs


@needs_chromium
def test_interactive_charts_draw_with_their_widgets_in_chromium(tmp_path):
    page = tmp_path / "interactive.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>" + export.inline_vega_scripts() + "</head><body>"
        + export.chart_html_fragment(charts.elu_alpha_explorer(), "elu")
        + export.chart_html_fragment(charts.activation_comparison(ACTIVATIONS), "comparison")
        + "</body></html>",
        encoding="utf-8",
    )
    dom = chromium_dom(page, tmp_path)
    svgs = drawn_svgs(dom)
    assert len(svgs) == 2
    assert len(mark_paths(svgs[0], "line")) == 6  # ELU, ReLU, Leaky ReLU x value, derivative
    assert len(mark_paths(svgs[1], "line")) == 4  # two chosen functions x value, derivative
    slider = re.search(r'<input[^>]*type="range"[^>]*>', dom).group(0)
    assert 'min="0.1"' in slider and 'max="2"' in slider
    selects = re.findall(r"<select[^>]*>(.*?)</select>", dom, flags=re.S)
    assert len(selects) == 2
    for select in selects:
        assert sorted(re.findall(r"<option[^>]*>([^<]*)</option>", select)) == ACTIVATION_LABELS


@needs_chromium
def test_page_of_fragments_draws_every_chart_in_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + export.inline_vega_scripts()
        + "<h1>Results</h1>" + export.chart_html_fragment(charts.per_class_accuracy(PER_CLASS), "classes")
        + "<p>text between</p>" + export.chart_html_fragment(charts.confusion_matrix(CONFUSION), "confusion")
        + "</body></html>",
        encoding="utf-8",
    )
    dom = chromium_dom(page, tmp_path)
    # Each chart is drawn inside its own div, in page order.
    before, after = dom.split('id="confusion"')
    (bars_svg,) = drawn_svgs(before.split('id="classes"')[1])
    (matrix_svg,) = drawn_svgs(after)
    assert len(mark_paths(bars_svg, "rect")) == len(PER_CLASS)
    assert len(mark_paths(matrix_svg, "rect")) == CONFUSION.size


# --- architecture-search charts and image grids -------------------------------------------

AXIS_TRIALS = pd.DataFrame({
    "number": [0, 1, 2, 3, 4],
    "state": ["COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE"],
    "value": [0.81, np.nan, 0.84, np.nan, 0.86],
    "last_val_acc": [0.81, 0.62, 0.84, 0.5, 0.86],
    "architecture": ["784-64-10", "784-32-32-10", "784-512-10", "784-128-10", "784-256-64-32-16-10"],
    "param_n_hidden_layers": [1, 2, 3, 4, 2],
    "param_width_1": [64, 32, 512, 128, 256],
    "param_learning_rate": [0.001, 0.003, 0.0003, 0.01, 0.03],
    "param_activation": ["relu", "tanh", "elu", "relu", "sigmoid"],
})  # fmt: skip


def compiled_legends(chart: alt.TopLevelMixin) -> list[dict]:
    """Every legend of the chart as Vega draws it (vl-convert's compilation, as vega-embed's)."""
    vega = vl_convert.vegalite_to_vega(chart.to_dict())
    found = []

    def visit(node):
        if isinstance(node, dict):
            found.extend(node.get("legends", []))
            for mark in node.get("marks", []):
                visit(mark)

    visit(vega)
    return found


@pytest.mark.parametrize("language", ["en", "ru"])
def test_search_charts_draw_one_trial_state_legend_named_in_the_language(language):
    """Colour and shape by state once made two "trial state" legends; the states are words of the edition."""
    names = {"en": ["complete", "pruned", "failed"], "ru": ["завершено", "отсечено", "ошибка"]}[language]
    for chart in (optimization_history(AXIS_TRIALS, language=language),
                  parameter_panels(AXIS_TRIALS, ["n_hidden_layers", "width_1", "learning_rate"], language=language)):  # fmt: skip
        (legend,) = compiled_legends(chart)
        spec = json.dumps(chart.to_dict(), ensure_ascii=False)
        assert all(f'"{name}"' in spec for name in names) and "COMPLETE" not in spec.replace('"state": "COMPLETE"', "")


def test_search_parameter_axes_label_the_values_tried():
    """Integers get whole ticks (not 1.5), widths every value tried (not just 32, 64, 512), and the
    learning rate few short labels (they ran together: "0.0010.003")."""
    chart = parameter_panels(AXIS_TRIALS, ["n_hidden_layers", "width_1", "learning_rate", "activation"])
    x = {panel["encoding"]["x"]["field"]: panel["encoding"]["x"] for panel in chart.to_dict()["concat"]}
    assert x["param_n_hidden_layers"]["axis"]["values"] == [1, 2, 3, 4]
    assert x["param_width_1"]["axis"]["values"] == [32, 64, 128, 256, 512]
    assert x["param_width_1"]["scale"] == {"type": "log", "base": 2}
    assert x["param_learning_rate"]["axis"]["labelOverlap"] == "greedy" and x["param_learning_rate"]["scale"]["type"] == "log"
    assert x["param_activation"]["type"] == "nominal"
    svg = export.to_svg(chart)
    assert "1.5" not in re.findall(r">([^<]*)</text>", svg)


def test_prediction_grid_captions_in_the_language_and_images_recoverable():
    """The notebook writes «Истина:»/«Предск.:»; the report redraws a logged grid from its own tiles."""
    from experiments.charts.image_grids import predictions_grid, predictions_grid_images

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Ankle boot"]
    labels, predicted, confidence = np.arange(6), np.array([0, 1, 3, 3, 4, 0]), np.full(6, 0.5)
    grids = {lang: predictions_grid(images, labels, predicted, confidence, names, language=lang) for lang in ("en", "ru")}
    assert grids["en"].size == grids["ru"].size
    assert np.asarray(grids["en"]).tobytes() != np.asarray(grids["ru"]).tobytes()
    for grid in grids.values():
        assert (predictions_grid_images(grid, 6) == images).all()
    from experiments.charts.i18n import translator

    assert translator("ru")("true: {name}") == "Истина: {name}" and translator("ru")("pred: {name} ({confidence})").startswith("Предск.:")
