"""The machine's own limit and the training's work: an fp32 matrix product's rate, FLOPs per sample.

The benchmark measures its pipelines against something that does not move with the code: the
rate of one large fp32 matrix product (``torch.mm``, n × n by n × n, 2n³ floating-point
operations) on the same device and the same torch thread count, timed in the same process
between the pipelines' rounds. A training pass is counted by the usual convention, 6 × the
forward multiply-adds per sample: each linear layer's forward product does one multiply-add per
weight and sample (2 FLOPs), its backward pass two products of the same size (the gradients of
its input and of its weight, 4 FLOPs). Biases, activations, dropout, the loss and the optimizer
step are left out of the count (they are linear in the parameters or activations, not in their
product); time spent on them lowers the achieved fraction. Autograd does not compute the gradient
of the first layer's input (the images do not require one), so the matrix products actually
executed are fewer: :func:`executed_matmul_flops_per_sample`.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from experiments.benchmark.device_sync import synchronize

# Large enough for the BLAS to reach its peak on a CPU (2048³: 17 GFLOP, about 0.1 s at
# 200 GFLOPS); a GPU needs a larger product to fill its cores.
MATMUL_SIZES: dict[str, int] = {"cpu": 2048, "cuda": 8192, "mps": 4096}
MATMUL_WARMUP = 2
MATMUL_REPEATS = 5


def forward_multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one sample's forward pass through ``model``'s linear layers.

    Parameters
    ----------
    model : nn.Module
        Any module; every ``nn.Linear`` in it counts ``in_features × out_features``.

    Returns
    -------
    int
        E.g. 566,528 for 784-512-256-128-10 (784·512 + 512·256 + 256·128 + 128·10).
    """
    return sum(layer.in_features * layer.out_features for layer in model.modules() if isinstance(layer, nn.Linear))


def training_flops_per_sample(model: nn.Module) -> int:
    """FLOPs one training sample costs by the 6 × forward multiply-adds convention (see the module docstring)."""
    return 6 * forward_multiply_adds(model)


def executed_matmul_flops_per_sample(model: nn.Module) -> int:
    """FLOPs of the matrix products autograd really runs per sample: 6 × multiply-adds less the first layer's input gradient.

    Assumes the first ``nn.Linear`` (in module order) takes the inputs, which need no gradient.
    """
    linears = [layer for layer in model.modules() if isinstance(layer, nn.Linear)]
    skipped = 2 * linears[0].in_features * linears[0].out_features if linears else 0
    return training_flops_per_sample(model) - skipped


def matmul_size(device: torch.device) -> int:
    """The side n of the n × n × n product timed on ``device``."""
    return MATMUL_SIZES.get(torch.device(device).type, MATMUL_SIZES["cpu"])


def time_matmul(
    device: torch.device, size: int | None = None, warmup: int = MATMUL_WARMUP, repeats: int = MATMUL_REPEATS
) -> list[float]:
    """Seconds of each of ``repeats`` fp32 ``torch.mm`` products of ``size`` × ``size`` matrices, after ``warmup`` untimed ones.

    The product is written into a preallocated output, so the allocator is not timed; on a GPU
    each product is synchronised before the clock stops. TF32 is not allowed (torch's default for
    ``torch.mm`` in fp32), so the figure is full fp32, as the training runs.
    """
    device = torch.device(device)
    size = matmul_size(device) if size is None else size
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device)
    b = torch.randn(size, size, generator=generator).to(device)
    out = torch.empty(size, size, device=device)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for _ in range(warmup):
            torch.mm(a, b, out=out)
        synchronize(device)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            synchronize(device)
            seconds.append(time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return seconds


def matmul_gflops(size: int, seconds: float) -> float:
    """GFLOPS of one n × n × n product (2n³ FLOPs) that took ``seconds``."""
    return 2 * size**3 / seconds / 1e9


def peak_figures(size: int, seconds_each: list[float], load_averages: list[float]) -> dict[str, object]:
    """The peak's figures from every timed product of every round.

    Returns
    -------
    dict
        ``gflops`` (the median product's rate: the peak the fractions divide by), ``best_gflops``,
        ``size``, ``flops_per_product`` (2n³), ``seconds_each`` and the ``load_average_each``
        (1-minute load average when each round's products were timed).
    """
    return {
        "gflops": matmul_gflops(size, statistics.median(seconds_each)),
        "best_gflops": matmul_gflops(size, min(seconds_each)),
        "size": size,
        "flops_per_product": 2 * size**3,
        "products_timed": len(seconds_each),
        "seconds_each": list(seconds_each),
        "load_average_each": list(load_averages),
    }
