"""The report's computed sentences and tables: each claim must follow from the data given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reporting import study_findings as findings
from reporting.sections.activations import derivative_frame
from reporting.sections.baseline import confusion_sentence, per_class_sentence
from reporting.sections.synthetic import prediction_frame
from reporting.training_tables import percent


def summary(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_convergence_names_the_fewest_epochs_and_the_arms_that_never_got_there() -> None:
    table = summary(
        arm=["sigmoid", "relu", "tanh"],
        mean_epochs_to_target=[math.nan, 1.0, 2.0],
        mean_final_test_acc=[0.6, 0.8, 0.78],
    )
    text = findings.convergence_sentence(table, 0.75, 5)
    assert text.startswith("**ReLU** converged fastest: it reached the target test accuracy of 75% after 1 epoch")
    assert "(Tanh 2)" in text and "Sigmoid never reached it within 5 epochs." in text


def test_convergence_tie_is_broken_by_final_accuracy() -> None:
    table = summary(arm=["relu", "tanh"], mean_epochs_to_target=[2.0, 2.0], mean_final_test_acc=[0.80, 0.82])
    text = findings.convergence_sentence(table, 0.7, 3)
    assert "converged equally fast" in text and "among them **Tanh** ended with the highest" in text


def test_convergence_when_nobody_reaches_the_target() -> None:
    table = summary(arm=["relu"], mean_epochs_to_target=[math.nan], mean_final_test_acc=[0.5])
    assert findings.convergence_sentence(table, 0.9, 1).startswith("No activation reached the target test accuracy of 90%")


def test_gradient_ratio_direction_follows_the_numbers() -> None:
    norms = pd.DataFrame(
        {
            "arm": ["sigmoid"] * 4 + ["relu"] * 4,
            "seed": 0,
            "epoch": [1, 2] * 4,
            "layer": ["layer1", "layer1", "layer2", "layer2"] * 2,
            "grad_norm": [0.01, 0.03, 5.0, 5.0, 0.1, 0.1, 0.01, 0.01],
        }
    )
    text = findings.gradient_sentence(norms, "sigmoid", "relu")
    assert "averages 0.02, 5.0 times smaller than under **ReLU** (0.1;" in text
    assert "This is what the theory predicts" in findings.theory_agreement_sentence(norms)
    flipped = norms.assign(arm=norms["arm"].map({"sigmoid": "relu", "relu": "sigmoid"}))
    assert "5.0 times larger than" in findings.gradient_sentence(flipped, "sigmoid", "relu")
    assert "does not show" in findings.theory_agreement_sentence(flipped)


def test_accuracy_gap_is_compared_with_the_seed_spread() -> None:
    table = summary(
        arm=["shallow", "deep"],
        mean_final_test_acc=[0.85, 0.80],
        std_final_test_acc=[0.01, 0.02],
        n_seeds=[3, 3],
    )
    text = findings.accuracy_sentence(table)
    assert text.startswith("**shallow** reached the highest test accuracy, 85.00% (mean over 3 seeds)")
    assert "**deep** the lowest, 80.00%" in text and "5.00 percentage points, is larger than" in text
    close = table.assign(std_final_test_acc=[0.03, 0.03])
    assert "is no larger than" in findings.accuracy_sentence(close)


def test_time_and_parameter_sentences() -> None:
    table = summary(
        arm=["a", "b"], mean_train_time_s=[2.0, 1.0], parameter_count=[100, 50], mean_final_test_acc=[0.7, 0.9]
    )
    assert findings.time_sentence(table) == "**b** trained fastest (1.0 s), **a** slowest (2.0 s)."
    assert "not the largest: **a** has the most parameters (100) against 50 for **b**" in findings.parameters_sentence(table)


def test_bad_tables_are_named() -> None:
    with pytest.raises(ValueError, match=r"summary lacks columns \['mean_epochs_to_target'\]"):
        findings.convergence_sentence(summary(arm=["x"], mean_final_test_acc=[0.5]), 0.5, 1)
    with pytest.raises(TypeError, match="summary must be a pandas DataFrame; got list"):
        findings.accuracy_sentence([1, 2])
    with pytest.raises(ValueError, match="no rows for 'layer1'"):
        findings.first_layer_norms(pd.DataFrame({"arm": ["relu"], "layer": ["layer2"], "grad_norm": [1.0]}))


def test_confusion_and_per_class_sentences() -> None:
    names = ["Shirt", "Coat", "Bag"]
    matrix = pd.DataFrame([[5, 3, 2], [1, 8, 1], [0, 0, 10]], index=names, columns=names)
    assert confusion_sentence(matrix) == (
        "The most frequent mistake: *Shirt* predicted as *Coat*, 3 times (30.0% of the Shirt test images)."
    )
    per_class = pd.DataFrame({"class_name": names, "accuracy": [0.5, 0.8, 1.0]})
    assert per_class_sentence(per_class) == (
        "The best-recognised class is *Bag* (100.00%), the hardest *Shirt* (50.00%)."
    )
    assert per_class_sentence(per_class.assign(accuracy=0.9)) == "Every class is recognised equally well: 90.00%."


def test_prediction_frame_counts_per_split_and_class() -> None:
    points = pd.DataFrame(
        {
            "label": [0, 0, 1, 1],
            "predicted": [0, 1, 1, 1],
            "confidence": [0.9, 0.6, 0.8, 0.7],
            "split": ["train", "train", "test", "test"],
        }
    )
    frame = prediction_frame(points)
    train0 = frame[(frame["split"] == "train") & (frame["class"] == "0")].iloc[0]
    assert (train0["points"], train0["correct"], train0["accuracy"], train0["mean confidence"]) == ("2", "1", "50.0%", "0.750")


def test_derivative_frame_reports_gap_and_largest_slope() -> None:
    z = np.linspace(-5, 5, 11)
    s = 1 / (1 + np.exp(-z))
    table = pd.DataFrame(
        {"function": "sigmoid", "alpha": np.nan, "z": z, "value": s, "derivative": s * (1 - s),
         "numerical_derivative": s * (1 - s) + 1e-9}
    )  # fmt: skip
    row = derivative_frame(table).iloc[0]
    assert row["largest f'(z) on the grid"] == "0.2500"
    assert row["largest gap, analytic vs numerical f'(z)"] == "1.0e-09"


def test_percent() -> None:
    assert percent(0.8748) == "87.48%" and percent(math.nan) == "n/a" and percent(1, 0) == "100%"
