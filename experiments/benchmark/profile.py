"""Where an anncore training epoch spends its time: ``torch.profiler`` over one epoch, by kind of work.

``python -m experiments.benchmark --profile`` trains the baseline model with anncore's own epoch
(``anncore.trainer.train_one_epoch``, its batches and its optimizer), one warm-up epoch and then
one under the profiler, and sums each operator's self time (time in the operator itself, not in
the operators it calls) into the kinds of work below. What no operator accounts for, the epoch's
wall time minus every operator's self time, is Python and dispatch between operators (the
profiler's own cost included, so that share is an upper bound). The matrix products' rate is the
FLOPs they really execute (``experiments.benchmark.peak.executed_matmul_flops_per_sample``) over
the time spent in them. On CUDA it profiles the eager epoch: the trainer's captured step
(``anncore.cuda_graph_step``) replays one graph per batch, whose operators the profiler does not
see one by one.
"""

from __future__ import annotations

import time

import torch

from experiments.benchmark.pipelines import BATCH_SIZE, BenchmarkSetup

# Kind of work -> the aten operators (and optimizer records) whose self time counts for it.
KINDS: dict[str, tuple[str, ...]] = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"),
    "Adam step": ("aten::_fused_adam_", "aten::_fused_adamw_", "Optimizer.step#Adam.step", "aten::_foreach_add_"),
    "dropout masks (random numbers)": ("aten::uniform_", "aten::bernoulli_", "aten::ge_", "aten::native_dropout"),
    "gradients zeroed or summed": ("Optimizer.zero_grad#Adam.zero_grad", "aten::sum", "aten::add_", "aten::fill_",
                                   "aten::zero_"),
    "activations, dropout products, loss (elementwise)": (
        "aten::clamp_min", "aten::relu", "aten::threshold_backward", "aten::mul", "aten::mul_",
        "aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
        "aten::nll_loss_backward", "aten::argmax", "aten::eq", "aten::add",
    ),
    "batch indexing": ("aten::index_select", "aten::randperm"),
}  # fmt: skip
OTHER_OPERATORS = "other operators"
BETWEEN_OPERATORS = "Python and dispatch between operators"


def kind_of(name: str) -> str:
    """The kind of work an operator's self time counts for (``OTHER_OPERATORS`` when not listed)."""
    for kind, names in KINDS.items():
        if name in names:
            return kind
    return OTHER_OPERATORS


def breakdown(self_seconds: dict[str, float], wall_seconds: float) -> dict[str, float]:
    """Seconds per kind of work from each operator's self seconds and the epoch's wall time.

    Parameters
    ----------
    self_seconds : dict
        Operator name -> its total self time in the epoch.
    wall_seconds : float
        The epoch's wall time; what the operators do not account for goes to ``BETWEEN_OPERATORS``.

    Returns
    -------
    dict
        Kind -> seconds, in the order of ``KINDS``, then ``OTHER_OPERATORS`` and ``BETWEEN_OPERATORS``.
    """
    kinds = {kind: 0.0 for kind in (*KINDS, OTHER_OPERATORS)}
    for name, seconds in self_seconds.items():
        kinds[kind_of(name)] += seconds
    kinds[BETWEEN_OPERATORS] = max(0.0, wall_seconds - sum(kinds.values()))
    return kinds


def profile_anncore_epoch(setup: BenchmarkSetup, executed_flops_per_sample: int) -> dict[str, object]:
    """Profile one epoch of anncore's training loop after one warm-up epoch (see the module docstring).

    Returns
    -------
    dict
        ``wall_seconds`` (the profiled epoch), ``samples``, ``seconds`` and ``fractions`` by kind of
        work, ``matmul_gflops`` (executed matrix-product FLOPs over the time in them; None off the CPU), and the ten
        ``top_operators`` by self time (name, seconds, calls).
    """
    from torch.profiler import ProfilerActivity, profile

    from anncore.data import BatchIterator
    from anncore.trainer import make_optimizer, train_one_epoch
    from experiments.benchmark.pipelines import _anncore_config, _build_model, load_tensors

    train_data, _ = load_tensors(setup)
    train_data = train_data.to(setup.device)
    config = _anncore_config(setup)
    model = _build_model(setup.seed).to(setup.device)
    optimizer = make_optimizer(model, config, setup.device)
    batches = BatchIterator(train_data, BATCH_SIZE, True, setup.seed, setup.max_batches)
    train_one_epoch(model, batches, optimizer, 1)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if setup.device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        start = time.perf_counter()
        row = train_one_epoch(model, batches, optimizer, 2)
        wall = time.perf_counter() - start
    events = profiler.key_averages()
    self_seconds = {event.key: event.self_cpu_time_total / 1e6 for event in events}
    seconds = breakdown(self_seconds, wall)
    matmul = seconds["matrix products"]
    # On a GPU the operators' CPU self times are launch times, not the kernels': no rate from them.
    on_cpu = setup.device.type == "cpu"
    top = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:10]
    return {
        "device": str(setup.device),
        "wall_seconds": wall,
        "samples": row["samples"],
        "seconds": seconds,
        "fractions": {kind: value / wall for kind, value in seconds.items()},
        "matmul_gflops": executed_flops_per_sample * row["samples"] / matmul / 1e9 if on_cpu and matmul > 0 else None,
        "top_operators": [{"name": e.key, "seconds": e.self_cpu_time_total / 1e6, "calls": e.count} for e in top],
        "note": "self CPU time per operator; on a GPU the kernels run asynchronously and these are launch times",
    }


def profile_lines(profile_result: dict[str, object]) -> list[str]:
    """The profile as printed lines: each kind's share of the epoch, and the matrix products' rate."""
    wall = profile_result["wall_seconds"]
    lines = [f"profile of one anncore epoch ({profile_result['samples']} samples, {wall:.3f} s under torch.profiler):"]
    for kind, seconds in profile_result["seconds"].items():
        lines.append(f"  {kind:<52} {seconds:7.3f} s  {seconds / wall:6.1%}")
    if profile_result["matmul_gflops"] is not None:
        lines.append(f"  the matrix products ran at {profile_result['matmul_gflops']:.1f} GFLOPS "
                     "(the FLOPs they execute over the time in them)")
    return lines
