"""How many trials of one shape train together (``--trials-per-batch K``): the option's range and its default.

K = 1 is the search as it always was, one trial at a time through the trainer. With K > 1 the
trials of a group share a shape and train as one stacked program (:mod:`experiments.search.stacked_trials`).

The default: 1 on the CPU, where stacking gains nothing (K = 2..8 measured 0.97-1.11x on 2 cores);
on CUDA :data:`CUDA_DEFAULT_TRIALS_PER_BATCH` (one small model leaves the device idle between
launches), capped by what fits in :data:`MEMORY_SHARE` of the device's free memory shared by the
invocation's workers, counted for the largest member the search space can draw. The value is
this machine's, so it is never a param: the parent logs it per invocation as the metric
``trials_per_batch``, and only what was asked (None for the default) is in ``anncore.sweep_options``.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_TRIALS_PER_BATCH = 1024
CUDA_DEFAULT_TRIALS_PER_BATCH = 32
MEMORY_SHARE = 0.5  # of the free device memory, for all the stacks of this invocation's workers
FLOAT_BYTES = 4
# Per weight: the weight, its gradient and Adam's two moments. Per activation: the forward's
# output, the copy autograd keeps for the backward pass and the dropout mask.
COPIES_PER_WEIGHT = 4
COPIES_PER_ACTIVATION = 3


def member_bytes(layer_sizes: Sequence[int], batch_size: int, eval_batch_size: int = 1024) -> int:
    """Device memory one stack member of this shape needs while it trains and is evaluated (an upper estimate).

    Parameters
    ----------
    layer_sizes : sequence of int
        Input, hidden and output widths, e.g. ``(784, 1024, 10)``.
    batch_size, eval_batch_size : int
        Examples per training step and per evaluation step.

    Returns
    -------
    int
        Bytes: weights, gradients and Adam's moments, plus the activations of the larger of a
        training step (kept for the backward pass, with dropout masks) and an evaluation step.
    """
    weights = sum(n_in * n_out + n_out for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]))
    units = sum(layer_sizes[1:])
    activations = max(batch_size * COPIES_PER_ACTIVATION, eval_batch_size) * units
    return FLOAT_BYTES * (COPIES_PER_WEIGHT * weights + activations)


def largest_member_bytes() -> int:
    """:func:`member_bytes` of the largest configuration the search space can draw."""
    from experiments.search.space import BATCH_SIZES, MAX_HIDDEN_LAYERS, WIDTHS

    sizes = [28 * 28, *([max(WIDTHS)] * MAX_HIDDEN_LAYERS), 10]
    return member_bytes(sizes, max(BATCH_SIZES))


def fitting_trials_per_batch(free_bytes: int, workers: int = 1) -> int:
    """The default K for a CUDA device with ``free_bytes`` free: at most the CUDA default, at least 1.

    Parameters
    ----------
    free_bytes : int
        Free device memory (``torch.cuda.mem_get_info``'s first value).
    workers : int
        This invocation's worker processes, each with a stack of its own on the device.
    """
    fits = int(free_bytes * MEMORY_SHARE / max(1, workers)) // largest_member_bytes()
    return max(1, min(CUDA_DEFAULT_TRIALS_PER_BATCH, fits))


def trials_per_batch(asked: int | None, device: str, workers: int = 1) -> int:
    """The K this invocation uses: ``asked`` when given, else 1 on the CPU and what fits on CUDA.

    Parameters
    ----------
    asked : int or None
        ``--trials-per-batch`` (None: the default).
    device : str
        The device as asked (``"auto"``, ``"cpu"`` or ``"cuda"``).
    workers : int
        The invocation's worker processes, sharing the device.
    """
    if asked is not None:
        return asked
    from anncore.trainer import resolve_device

    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return 1
    import torch

    free_bytes, _ = torch.cuda.mem_get_info(resolved)
    return fitting_trials_per_batch(free_bytes, workers)
