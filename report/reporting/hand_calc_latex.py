"""Turn a hand-calculation trace (``anncore.hand_calculation.Trace.to_dict()``) into LaTeX steps.

Every number comes from the trace: given values (inputs, weights, biases, target, learning
rate) are written as given, computed values rounded to ``decimals`` places. The rounded
intermediate values are only displayed; each result is the engine's exact value, rounded.

The output is Markdown with display math (``$$\\begin{aligned} ... \\end{aligned}$$``) that
pandoc turns into MathML for HTML and into Typst math for the PDF, so it uses only TeX that
pandoc's texmath understands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from reporting.i18n import _

FUNCTION_NAMES = {
    "sigmoid": r"\sigma",
    "tanh": r"\tanh",
    "relu": r"\mathrm{ReLU}",
    "leaky_relu": r"\mathrm{LeakyReLU}",
    "elu": r"\mathrm{ELU}",
    "identity": r"\mathrm{id}",
    "softmax": r"\mathrm{softmax}",
}
LOSS_FORMULAS = {
    "half_squared_error": r"L = \tfrac{1}{2} \sum_i (\hat{y}_i - y_i)^2",
    "binary_cross_entropy": r"L = -\sum_i \left[ y_i \ln \hat{y}_i + (1 - y_i) \ln (1 - \hat{y}_i) \right]",
    "softmax_cross_entropy": r"L = -\sum_i y_i \ln \hat{y}_i",
}
REQUIRED_KEYS = ("inputs", "layers", "loss_name", "learning_rate", "forward_only", "y_hat")


@dataclass(frozen=True)
class Step:
    """One titled block of aligned equations (each line ``lhs &= rhs``)."""

    title: str
    equations: tuple[str, ...]

    def to_markdown(self) -> str:
        """Return the step as a bold title and one display-math ``aligned`` block."""
        body = " \\\\\n".join(self.equations)
        return f"**{self.title}**\n\n$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$\n"


def computed(value: float, decimals: int = 4) -> str:
    """Format a computed value to ``decimals`` places.

    Values too small to keep two significant digits at that precision (0 < |v| <
    10^-(decimals-1)) get three significant digits instead, so ``-0.000341`` does not
    collapse to ``-0.0003``.
    """
    value = float(value)
    if value != 0 and abs(value) < 10 ** -(decimals - 1):
        places = -math.floor(math.log10(abs(value))) + 2
        return f"{value:.{places}f}"
    return f"{value + 0.0:.{decimals}f}"  # + 0.0 turns -0.0 into 0.0


def given(value: float) -> str:
    """Format a given value as the problem states it: ``0.5``, ``-0.3``, ``2``."""
    return f"{float(value) + 0.0:.10g}"


def parenthesised(text: str) -> str:
    """Wrap a negative number in parentheses, for use inside a product: ``(-0.3)``."""
    return f"({text})" if text.startswith("-") else text


def signed_sum(terms: Sequence[str]) -> str:
    """Join formatted terms into ``a + b - c`` (a negative term after the first reads ``- c``)."""
    out = terms[0]
    for term in terms[1:]:
        out += f" - {term[1:]}" if term.startswith("-") else f" + {term}"
    return out


def column_vector(values: Sequence[float], fmt=given) -> str:
    """A column vector as a LaTeX ``pmatrix``."""
    return r"\begin{pmatrix} " + r" \\ ".join(fmt(v) for v in values) + r" \end{pmatrix}"


def matrix(rows: Sequence[Sequence[float]], fmt=given) -> str:
    """A matrix as a LaTeX ``pmatrix``."""
    body = r" \\ ".join(" & ".join(fmt(v) for v in row) for row in rows)
    return r"\begin{pmatrix} " + body + r" \end{pmatrix}"


def _check_trace(trace: Any) -> None:
    if not isinstance(trace, dict):
        raise TypeError(f"trace must be a dict from Trace.to_dict(); got {type(trace).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in trace]
    if missing:
        raise ValueError(
            f"trace is missing {missing}; expected the keys of Trace.to_dict(): {list(REQUIRED_KEYS)}"
        )
    for layer in trace["layers"]:
        if layer["activation"] not in FUNCTION_NAMES:
            raise ValueError(
                f"layer {layer['index']} has activation {layer['activation']!r}; "
                f"supported: {sorted(FUNCTION_NAMES)}"
            )


def _alpha(layer: dict) -> float:
    default = 1.0 if layer["activation"] == "elu" else 0.01
    return float(layer.get("activation_params", {}).get("alpha", default))


def _input_symbol(layer_index: int, j: int) -> str:
    return f"x_{{{j}}}" if layer_index == 1 else f"a_{{{j}}}^{{({layer_index - 1})}}"


def _input_value(trace: dict, layer_index: int, j: int, decimals: int) -> str:
    if layer_index == 1:
        return given(trace["inputs"][j - 1])
    return computed(trace["layers"][layer_index - 2]["a"][j - 1], decimals)


def given_step(trace: dict) -> Step:
    """The problem statement: inputs, parameters, activations, and target, loss and rate."""
    _check_trace(trace)
    lines = [r"\mathbf{x} &= " + column_vector(trace["inputs"])]
    for layer in trace["layers"]:
        l = layer["index"]
        name = FUNCTION_NAMES[layer["activation"]]
        if layer["activation"] in {"leaky_relu", "elu"}:
            word = _("with")
            name += rf" \text{{ {word} }} \alpha = {given(_alpha(layer))}"
        lines += [
            rf"W^{{({l})}} &= {matrix(layer['weights'])}, \quad "
            rf"\mathbf{{b}}^{{({l})}} = {column_vector(layer['bias'])}, \quad f^{{({l})}} = {name}"
        ]
    if not trace["forward_only"]:
        rate = _("learning rate")
        lines += [
            r"\mathbf{y} &= " + column_vector(trace["target"]),
            LOSS_FORMULAS[trace["loss_name"]].replace("L =", "L &=", 1),
            rf"\eta &= {given(trace['learning_rate'])} \quad \text{{({rate})}}",
        ]
    return Step(_("Given"), tuple(lines))


def _activation_line(layer: dict, i: int, decimals: int) -> str:
    l, name = layer["index"], layer["activation"]
    z, a = layer["z"][i - 1], layer["a"][i - 1]
    zs, out = computed(z, decimals), computed(a, decimals)
    lhs = rf"a_{{{i}}}^{{({l})}} &= {FUNCTION_NAMES[name]}({zs})"
    if name == "sigmoid":
        e = computed(math.exp(-z), decimals)
        return rf"{lhs} = \frac{{1}}{{1 + e^{{{computed(-z, decimals)}}}}} = \frac{{1}}{{1 + {e}}} = {out}"
    if name == "tanh":
        ep, em = computed(math.exp(z), decimals), computed(math.exp(-z), decimals)
        return (
            rf"{lhs} = \frac{{e^{{{zs}}} - e^{{{computed(-z, decimals)}}}}}"
            rf"{{e^{{{zs}}} + e^{{{computed(-z, decimals)}}}}} = \frac{{{ep} - {em}}}{{{ep} + {em}}} = {out}"
        )
    if name == "relu":
        return rf"{lhs} = \max(0, {zs}) = {out}"
    if name in {"leaky_relu", "elu"}:
        if z > 0:
            return rf"{lhs} = {out} \quad (z > 0)"
        alpha = given(_alpha(layer))
        if name == "leaky_relu":
            return rf"{lhs} = {alpha} \cdot {parenthesised(zs)} = {out} \quad (z \le 0)"
        return rf"{lhs} = {alpha} \, (e^{{{zs}}} - 1) = {out} \quad (z \le 0)"
    if name == "identity":
        return rf"{lhs} = {out}"
    exps = [math.exp(v) for v in layer["z"]]
    total = computed(sum(exps), decimals)
    return rf"{lhs} = \frac{{e^{{{zs}}}}}{{\sum_k e^{{z_k^{{({l})}}}}}} = \frac{{{computed(exps[i - 1], decimals)}}}{{{total}}} = {out}"


def forward_steps(trace: dict, decimals: int = 4) -> list[Step]:
    """One step per layer: each pre-activation as a sum of products, then each activation."""
    _check_trace(trace)
    steps = []
    for layer in trace["layers"]:
        l = layer["index"]
        lines = []
        for i, (row, bias, z) in enumerate(zip(layer["weights"], layer["bias"], layer["z"]), start=1):
            inputs = [_input_value(trace, l, j, decimals) for j in range(1, len(row) + 1)]
            products = [f"{given(w)} \\cdot {parenthesised(x)}" for w, x in zip(row, inputs)]
            values = [
                computed(w * (trace["inputs"][j] if l == 1 else trace["layers"][l - 2]["a"][j]), decimals)
                for j, w in enumerate(row)
            ]
            lines.append(
                rf"z_{{{i}}}^{{({l})}} &= {signed_sum(products + [given(bias)])} "
                rf"= {signed_sum(values + [computed(bias, decimals)])} = {computed(z, decimals)}"
            )
        lines += [_activation_line(layer, i, decimals) for i in range(1, layer["n_out"] + 1)]
        title = (
            _("Forward pass, layer {l} (output layer)")
            if l == len(trace["layers"])
            else _("Forward pass, layer {l} (hidden layer)")
        )
        steps.append(Step(title.format(l=l), tuple(lines)))
    return steps


def loss_step(trace: dict, decimals: int = 4) -> Step:
    """The loss of the prediction against the target."""
    y_hat, y = trace["y_hat"], trace["target"]
    pieces = {
        "half_squared_error": lambda: r"\tfrac{1}{2}"
        + " + ".join(
            rf"\left({computed(p, decimals)} - {given(t)}\right)^2" for p, t in zip(y_hat, y)
        ),
        "binary_cross_entropy": lambda: "-"
        + " - ".join(
            rf"\left[{given(t)} \ln {computed(p, decimals)} + {given(1 - t)} \ln {computed(1 - p, decimals)}\right]"
            for p, t in zip(y_hat, y)
        ),
        "softmax_cross_entropy": lambda: "-"
        + " - ".join(
            (rf"\ln {computed(p, decimals)}" if t == 1 else rf"{given(t)} \ln {computed(p, decimals)}")
            for p, t in zip(y_hat, y)
            if t > 0
        ),
    }[trace["loss_name"]]()
    return Step(_("Loss"), (rf"L &= {pieces} = {computed(trace['loss'], decimals)}",))


def _output_gradient_line(trace: dict, i: int, decimals: int) -> str:
    L = len(trace["layers"])
    p, t = trace["y_hat"][i - 1], trace["target"][i - 1]
    g = trace["layers"][-1]["grad_a"][i - 1]
    lhs = rf"\frac{{\partial L}}{{\partial a_{{{i}}}^{{({L})}}}} &= "
    ps, ts, gs = computed(p, decimals), given(t), computed(g, decimals)
    if trace["loss_name"] == "half_squared_error":
        return lhs + rf"\hat{{y}}_{{{i}}} - y_{{{i}}} = {ps} - {parenthesised(ts)} = {gs}"
    if trace["loss_name"] == "binary_cross_entropy":
        return lhs + (
            rf"\frac{{\hat{{y}}_{{{i}}} - y_{{{i}}}}}{{\hat{{y}}_{{{i}}}(1 - \hat{{y}}_{{{i}}})}}"
            rf" = \frac{{{ps} - {parenthesised(ts)}}}{{{ps} \cdot (1 - {ps})}} = {gs}"
        )
    return lhs + rf"-\frac{{y_{{{i}}}}}{{\hat{{y}}_{{{i}}}}} = -\frac{{{ts}}}{{{ps}}} = {gs}"


def _hidden_gradient_line(trace: dict, l: int, j: int, decimals: int) -> str:
    upper = trace["layers"][l]  # layer l + 1 (0-based index l)
    terms = [
        f"{given(row[j - 1])} \\cdot {parenthesised(computed(d, decimals))}"
        for row, d in zip(upper["weights"], upper["delta"])
    ]
    g = trace["layers"][l - 1]["grad_a"][j - 1]
    return (
        rf"\frac{{\partial L}}{{\partial a_{{{j}}}^{{({l})}}}} &= \sum_i W_{{i{j}}}^{{({l + 1})}} \delta_i^{{({l + 1})}}"
        rf" = {signed_sum(terms)} = {computed(g, decimals)}"
    )


def _derivative_line(layer: dict, i: int, decimals: int) -> str:
    l, name = layer["index"], layer["activation"]
    z, a = layer["z"][i - 1], layer["a"][i - 1]
    d = layer["activation_derivative"][i - 1]
    f = FUNCTION_NAMES[name]
    lhs = rf"{f}'(z_{{{i}}}^{{({l})}}) &= "
    zs, a_s, ds = computed(z, decimals), computed(a, decimals), computed(d, decimals)
    if name == "sigmoid":
        return lhs + rf"a_{{{i}}}^{{({l})}} (1 - a_{{{i}}}^{{({l})}}) = {a_s} \cdot (1 - {a_s}) = {ds}"
    if name == "tanh":
        return lhs + rf"1 - (a_{{{i}}}^{{({l})}})^2 = 1 - {a_s}^2 = {ds}"
    # ReLU-like and identity derivatives are the exact constants 0, 1 or alpha: no rounding.
    if name == "identity":
        return lhs + given(d)
    if z > 0:
        return lhs + rf"{given(d)} \quad (z_{{{i}}}^{{({l})}} = {zs} > 0)"
    if name == "elu":
        return lhs + rf"\alpha e^{{{zs}}} = {ds} \quad (z_{{{i}}}^{{({l})}} = {zs} \le 0)"
    return lhs + rf"{given(d)} \quad (z_{{{i}}}^{{({l})}} = {zs} \le 0)"


def _derivative_text(layer: dict, i: int, decimals: int) -> str:
    d = layer["activation_derivative"][i - 1]
    exact = layer["activation"] in {"relu", "leaky_relu", "identity"} or (
        layer["activation"] == "elu" and layer["z"][i - 1] > 0
    )
    return given(d) if exact else computed(d, decimals)


def _delta_lines(layer: dict, decimals: int) -> list[str]:
    l = layer["index"]
    if layer["activation"] == "softmax":
        return [
            rf"\boldsymbol{{\delta}}^{{({l})}} &= \left(\frac{{\partial \mathbf{{a}}^{{({l})}}}}"
            rf"{{\partial \mathbf{{z}}^{{({l})}}}}\right)^{{\top}} \frac{{\partial L}}{{\partial \mathbf{{a}}^{{({l})}}}}"
            rf" = {column_vector(layer['delta'], lambda v: computed(v, decimals))}"
        ]
    lines = [_derivative_line(layer, i, decimals) for i in range(1, layer["n_out"] + 1)]
    for i, (g, delta) in enumerate(zip(layer["grad_a"], layer["delta"]), start=1):
        lines.append(
            rf"\delta_{{{i}}}^{{({l})}} &= \frac{{\partial L}}{{\partial a_{{{i}}}^{{({l})}}}} \, {FUNCTION_NAMES[layer['activation']]}'(z_{{{i}}}^{{({l})}})"
            rf" = {parenthesised(computed(g, decimals))} \cdot {parenthesised(_derivative_text(layer, i, decimals))}"
            rf" = {computed(delta, decimals)}"
        )
    return lines


def backward_steps(trace: dict, decimals: int = 4) -> list[Step]:
    """The error signals: dL/da, f'(z) and delta, from the output layer back to layer 1."""
    _check_trace(trace)
    if trace["forward_only"]:
        raise ValueError("trace is forward-only (it has no target), so it has no backward pass")
    layers = trace["layers"]
    steps = []
    for layer in reversed(layers):
        l = layer["index"]
        if l == len(layers):
            lines = [_output_gradient_line(trace, i, decimals) for i in range(1, layer["n_out"] + 1)]
            title = _("Backward pass, layer {l} (output layer)").format(l=l)
        else:
            lines = [_hidden_gradient_line(trace, l, j, decimals) for j in range(1, layer["n_out"] + 1)]
            title = _("Backward pass, layer {l} (hidden layer)").format(l=l)
        steps.append(Step(title, tuple(lines + _delta_lines(layer, decimals))))
    return steps


def gradient_steps(trace: dict, decimals: int = 4) -> list[Step]:
    """Per layer: dL/dW_ij = delta_i a_j^(l-1) and dL/db_i = delta_i."""
    steps = []
    for layer in reversed(trace["layers"]):
        l = layer["index"]
        lines = []
        for i, (delta, row) in enumerate(zip(layer["delta"], layer["grad_weights"]), start=1):
            for j, grad in enumerate(row, start=1):
                lines.append(
                    rf"\frac{{\partial L}}{{\partial W_{{{i}{j}}}^{{({l})}}}} &= \delta_{{{i}}}^{{({l})}} {_input_symbol(l, j)}"
                    rf" = {parenthesised(computed(delta, decimals))} \cdot {parenthesised(_input_value(trace, l, j, decimals))}"
                    rf" = {computed(grad, decimals)}"
                )
            lines.append(
                rf"\frac{{\partial L}}{{\partial b_{{{i}}}^{{({l})}}}} &= \delta_{{{i}}}^{{({l})}} = {computed(layer['grad_bias'][i - 1], decimals)}"
            )
        steps.append(Step(_("Gradients of layer {l}").format(l=l), tuple(lines)))
    return steps


def update_step(trace: dict, decimals: int = 4) -> Step:
    """One gradient-descent step: W <- W - eta dL/dW, b <- b - eta dL/db, for every parameter."""
    eta = given(trace["learning_rate"])
    lines = []
    for layer in reversed(trace["layers"]):
        l = layer["index"]
        for i, (row, grads, new_row) in enumerate(
            zip(layer["weights"], layer["grad_weights"], layer["weights_new"]), start=1
        ):
            for j, (w, g, new) in enumerate(zip(row, grads, new_row), start=1):
                lines.append(
                    rf"W_{{{i}{j}}}^{{({l})}} &\leftarrow {given(w)} - {eta} \cdot {parenthesised(computed(g, decimals))}"
                    rf" = {computed(new, decimals)}"
                )
            b, gb, new_b = layer["bias"][i - 1], layer["grad_bias"][i - 1], layer["bias_new"][i - 1]
            lines.append(
                rf"b_{{{i}}}^{{({l})}} &\leftarrow {given(b)} - {eta} \cdot {parenthesised(computed(gb, decimals))}"
                rf" = {computed(new_b, decimals)}"
            )
    return Step(_("Update with learning rate {eta}").format(eta=f"$\\eta = {eta}$"), tuple(lines))


def trace_steps(trace: dict, decimals: int = 4, include_given: bool = True) -> list[Step]:
    """All steps of a trace in reading order: given, forward, and with a target loss, backward,
    gradients and the update.

    Parameters
    ----------
    trace : dict
        ``Trace.to_dict()`` (as stored in the ``hand_calculations`` run's ``traces/*.json``).
    decimals : int
        Decimal places for computed values (the TO-DO asks for 4).
    include_given : bool
        Whether to start with the problem statement.

    Returns
    -------
    list of Step
    """
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 1 <= decimals <= 12:
        raise ValueError(f"decimals must be an integer from 1 to 12; got {decimals!r}")
    _check_trace(trace)
    steps = [given_step(trace)] if include_given else []
    steps += forward_steps(trace, decimals)
    if not trace["forward_only"]:
        steps += [loss_step(trace, decimals)]
        steps += backward_steps(trace, decimals)
        steps += gradient_steps(trace, decimals)
        steps += [update_step(trace, decimals)]
    return steps


def trace_markdown(trace: dict, decimals: int = 4, include_given: bool = True) -> str:
    """The whole hand calculation as Markdown with display math (see :func:`trace_steps`)."""
    return "\n".join(step.to_markdown() for step in trace_steps(trace, decimals, include_given))
