"""reporting.hand_calc_latex: step-by-step LaTeX from engine traces, checked against numbers
computed here by closed form, and against pandoc's TeX parser (MathML and Typst)."""

from __future__ import annotations

import json
import math
import re

import pypandoc
import pytest

from anncore.hand_calculation import DenseLayer, forward_backward
from reporting.hand_calc_latex import (
    backward_steps,
    computed,
    given,
    signed_sum,
    trace_markdown,
    trace_steps,
)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@pytest.fixture(scope="module")
def trace_3_2_1() -> dict:
    """TO-DO 2.1/2.2's network, as a JSON round trip of Trace.to_dict() (as MLflow stores it)."""
    trace = forward_backward(
        [0.2, -0.1, 0.5],
        0.8,
        [
            DenseLayer([[0.1, 0.2, -0.1], [0.3, -0.2, 0.4]], [0.1, -0.1], "relu"),
            DenseLayer([0.5, -0.3], 0.2, "sigmoid"),
        ],
        loss="half_squared_error",
        learning_rate=0.1,
    )
    return json.loads(json.dumps(trace.to_dict()))


def line_starting(markdown: str, lhs: str) -> str:
    """The single equation line whose left-hand side is ``lhs``."""
    lines = [line for line in markdown.splitlines() if line.startswith(lhs + " &")]
    assert len(lines) == 1, f"expected one line for {lhs!r}, found {lines}"
    return lines[0].rstrip(" \\")


def test_3_2_1_forward_values_match_closed_form(trace_3_2_1: dict) -> None:
    md = trace_markdown(trace_3_2_1, decimals=4, include_given=False)
    z1 = 0.1 * 0.2 + 0.2 * -0.1 + -0.1 * 0.5 + 0.1
    z2 = 0.3 * 0.2 + -0.2 * -0.1 + 0.4 * 0.5 - 0.1
    z_out = 0.5 * max(z1, 0) - 0.3 * max(z2, 0) + 0.2
    y_hat = sigmoid(z_out)
    assert line_starting(md, "z_{1}^{(1)}").endswith(f"= {z1:.4f}")
    assert line_starting(md, "z_{2}^{(1)}").endswith(f"= {z2:.4f}")
    assert line_starting(md, "z_{1}^{(2)}").endswith(f"= {z_out:.4f}")
    sigmoid_line = line_starting(md, "a_{1}^{(2)}")
    assert sigmoid_line.endswith(f"= {y_hat:.4f}")
    assert f"1 + {math.exp(-z_out):.4f}" in sigmoid_line
    assert line_starting(md, "L").endswith(f"= {0.5 * (y_hat - 0.8) ** 2:.4f}")


def test_3_2_1_gradients_and_update_match_closed_form(trace_3_2_1: dict) -> None:
    md = trace_markdown(trace_3_2_1, decimals=4)
    a = [0.05, 0.18]
    y_hat = sigmoid(0.5 * a[0] - 0.3 * a[1] + 0.2)
    delta = (y_hat - 0.8) * y_hat * (1 - y_hat)
    assert line_starting(md, r"\delta_{1}^{(2)}").endswith(f"= {delta:.4f}")
    for j, a_j in enumerate(a, start=1):
        grad = delta * a_j
        assert line_starting(md, rf"\frac{{\partial L}}{{\partial W_{{1{j}}}^{{(2)}}}}").endswith(f"= {grad:.4f}")
    assert line_starting(md, r"\frac{\partial L}{\partial b_{1}^{(2)}}").endswith(f"= {delta:.4f}")
    # hidden layer: ReLU passes delta * w back; gradient w.r.t. W^(1)_13 is delta_1^(1) x_3
    delta_hidden = 0.5 * delta
    assert line_starting(md, r"\frac{\partial L}{\partial W_{13}^{(1)}}").endswith(f"= {delta_hidden * 0.5:.4f}")
    assert line_starting(md, r"W_{11}^{(2)}").endswith(f"= {0.5 - 0.1 * delta * a[0]:.4f}")
    assert r"\mathrm{ReLU}'(z_{1}^{(1)}) &= 1 \quad" in md


def test_steps_come_in_reading_order(trace_3_2_1: dict) -> None:
    titles = [step.title for step in trace_steps(trace_3_2_1)]
    assert titles == [
        "Given",
        "Forward pass, layer 1 (hidden layer)",
        "Forward pass, layer 2 (output layer)",
        "Loss",
        "Backward pass, layer 2 (output layer)",
        "Backward pass, layer 1 (hidden layer)",
        "Gradients of layer 2",
        "Gradients of layer 1",
        "Update with learning rate $\\eta = 0.1$",
    ]


def test_forward_only_trace_has_no_backward_part() -> None:
    trace = forward_backward(
        [2.0, -1.0], None, [DenseLayer([0.5, -0.3], 0.1, "tanh")]
    ).to_dict()
    md = trace_markdown(trace)
    assert "Loss" not in md and "partial" not in md
    line = line_starting(md, "a_{1}^{(1)}")
    assert f"{math.exp(1.4):.4f} - {math.exp(-1.4):.4f}" in line
    assert line.endswith(f"= {math.tanh(1.4):.4f}")
    with pytest.raises(ValueError, match="forward-only"):
        backward_steps(trace)


def test_softmax_cross_entropy_output_delta_is_y_hat_minus_y() -> None:
    trace = forward_backward(
        [1.0, -1.0],
        1,
        [DenseLayer([[0.2, -0.4], [0.7, 0.1], [-0.3, 0.5]], [0.0, 0.1, -0.1], "softmax")],
        loss="softmax_cross_entropy",
    ).to_dict()
    md = trace_markdown(trace, include_given=False)
    z = [0.2 + 0.4, 0.7 - 0.1 + 0.1, -0.3 - 0.5 - 0.1]
    total = sum(math.exp(v) for v in z)
    p = [math.exp(v) / total for v in z]
    expected = [p[0], p[1] - 1, p[2]]
    delta_line = line_starting(md, r"\boldsymbol{\delta}^{(1)}")
    assert " \\\\ ".join(f"{v:.4f}" for v in expected) in delta_line
    assert line_starting(md, "L").endswith(f"= {-math.log(p[1]):.4f}")


def test_number_formats() -> None:
    assert computed(0.05) == "0.0500"
    assert computed(-0.0) == "0.0000"
    assert computed(-0.0003511287) == "-0.000351"
    assert computed(0.5426, decimals=2) == "0.54"
    assert given(0.5) == "0.5" and given(-0.3) == "-0.3" and given(2.0) == "2"
    assert signed_sum(["0.1", "-0.2", "0.3"]) == "0.1 - 0.2 + 0.3"


def test_every_formula_parses_as_tex_for_html_and_typst(trace_3_2_1: dict) -> None:
    md = trace_markdown(trace_3_2_1)
    blocks = md.count("$$\n") // 2 + md.count("$\\eta")
    html = pypandoc.convert_text(md, "html", format="markdown", extra_args=["--mathml"])
    assert html.count("<math") == blocks
    typst = pypandoc.convert_text(md, "typst", format="markdown")
    # texmath turned every command into Typst; an unparsed formula would keep its backslashes
    assert not re.search(r"\\(frac|begin|partial|delta|operatorname|cdot)", typst)
    assert "frac(partial L" in typst


def test_bad_input_is_named() -> None:
    with pytest.raises(TypeError, match="Trace.to_dict"):
        trace_markdown("not a trace")
    with pytest.raises(ValueError, match=r"missing \['layers'"):
        trace_markdown({"inputs": [1.0], "loss_name": "x", "learning_rate": 0.1, "forward_only": True, "y_hat": [0]})
    trace = forward_backward([1.0], None, [DenseLayer([1.0], 0.0, "relu")]).to_dict()
    with pytest.raises(ValueError, match="decimals must be an integer from 1 to 12; got 0"):
        trace_markdown(trace, decimals=0)
    trace["layers"][0]["activation"] = "swish"
    with pytest.raises(ValueError, match="'swish'"):
        trace_markdown(trace)
