"""The training step captured once as a CUDA graph and replayed for every full-size batch.

At batch 128 the course's models are launch-bound on a GPU: a step is a few hundred small
kernels, and launching them from Python costs more than running them. Captured once as a CUDA
graph (``torch.cuda.CUDAGraph``), the whole step — index gather, forward with dropout,
cross-entropy, backward, fused Adam — is one launch per batch.

A graph replays fixed memory addresses, so everything it touches is static:

- the epoch's sample order, copied once per epoch into ``order`` (full batches x batch size);
- ``step``, a device counter the graph reads to pick its row of ``order`` and then increments;
- the per-batch losses, the correct count and the gradient norms, accumulated on the device by
  the graph itself and read once per epoch (:func:`anncore.trainer._epoch_summary`);
- the optimizer, ``torch.optim.Adam(fused=True, capturable=True)``, whose step count lives on
  the device.

The epoch's samples and their order are the eager loop's (both take them from
:meth:`anncore.data.BatchIterator.epoch_order`); the last, smaller batch runs eagerly. Capture
needs a few eager warm-up steps on a side stream; they run from a snapshot of the weights and the
optimizer's state, which are put back before the capture, so training starts from the same state
as the eager loop's.

Everything but the capture runs on any device: with ``capture=False`` :meth:`CapturedEpochs.run`
calls the same step body eagerly, which is how the CPU tests check the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from anncore.data import BatchIterator, TensorData

WARMUP_STEPS = 3  # eager steps on a side stream before capture (torch's documented recipe)


@dataclass(frozen=True)
class BatchPlan:
    """How one epoch's samples split into captured full batches and an eager remainder.

    Attributes
    ----------
    batch_size : int
    full_batches : int
        Batches of exactly ``batch_size`` samples (the replayed graph's).
    remainder : int
        Samples of the last, smaller batch (0 when there is none); it runs eagerly.
    """

    batch_size: int
    full_batches: int
    remainder: int

    @classmethod
    def of(cls, batches: BatchIterator) -> "BatchPlan":
        """The plan of ``batches``: its ``len`` batches, capped by ``max_batches`` as it is."""
        n_samples, size, n_batches = len(batches.data), batches.batch_size, len(batches)
        full = min(n_batches, n_samples // size)
        remainder = min(n_samples, n_batches * size) - full * size
        return cls(size, full, remainder)

    @property
    def samples(self) -> int:
        """Samples one epoch trains on."""
        return self.full_batches * self.batch_size + self.remainder


def uses_cuda_graphs(requested: bool, device: torch.device, optimizer: str) -> bool:
    """Whether training takes the captured path: asked for, on CUDA, with Adam.

    Never on the CPU or MPS (no CUDA graphs there). SGD stays eager: only Adam has the
    ``capturable`` step whose count lives on the device.
    """
    return bool(requested) and device.type == "cuda" and optimizer == "adam"


def _state_tensors(model: nn.Module) -> list[torch.Tensor]:
    return [t for t in model.state_dict(keep_vars=True).values() if isinstance(t, torch.Tensor)]


class CapturedEpochs:
    """Training epochs whose full-size batches replay one captured step (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        On the data's device.
    optimizer : torch.optim.Optimizer
        Created fresh for ``model`` (no state yet); on CUDA ``Adam(fused=True, capturable=True)``.
    data : TensorData
        The training data, on the device.
    plan : BatchPlan
        From the epoch's :class:`~anncore.data.BatchIterator`; needs ``full_batches >= 1``.
    grad_norm_layers : sequence of nn.Linear
        Layers whose weight-gradient L2 norm is summed per batch (empty: none).
    capture : bool
        Capture a CUDA graph (CUDA only); False runs the same step eagerly on any device.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        data: TensorData,
        plan: BatchPlan,
        grad_norm_layers: Sequence[nn.Linear] = (),
        capture: bool = True,
    ) -> None:
        if plan.full_batches < 1:
            raise ValueError(f"a captured epoch needs at least one full batch, got plan {plan}")
        if capture and data.x.device.type != "cuda":
            raise ValueError(f"CUDA graphs need the data on a CUDA device, got {data.x.device}")
        device = data.x.device
        self.model, self.optimizer, self.data, self.plan = model, optimizer, data, plan
        self.layers = list(grad_norm_layers)
        self.capture = capture
        self.order = torch.zeros(plan.full_batches, plan.batch_size, dtype=torch.int64, device=device)
        self.step = torch.zeros(1, dtype=torch.int64, device=device)
        self.losses = torch.zeros(plan.full_batches, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.grad_norm_sum = torch.zeros(len(self.layers), device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self._graph_grads: list[torch.Tensor | None] = []

    def _body(self) -> None:
        """One step on row ``step`` of ``order``, its figures added to the device accumulators.

        Only tensor operations on static tensors: what the graph records and replays.
        """
        index = self.order.index_select(0, self.step).reshape(-1)
        x, y = self.data.x.index_select(0, index), self.data.y.index_select(0, index)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        if self.layers:
            self.grad_norm_sum += torch.stack([torch.linalg.vector_norm(layer.weight.grad) for layer in self.layers])
        self.optimizer.step()
        self.losses.index_copy_(0, self.step, loss.detach().reshape(1))
        self.correct += (logits.detach().argmax(dim=1) == y).sum()
        self.step += 1

    def _eager_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._body()

    def _reset(self) -> None:
        self.step.zero_()
        self.losses.zero_()
        self.correct.zero_()
        self.grad_norm_sum.zero_()

    def _capture(self) -> None:
        """Warm up on a side stream from a snapshot, restore it, then record the step once."""
        snapshot = [t.detach().clone() for t in _state_tensors(self.model)]
        self.order.copy_(torch.arange(self.order.numel(), device=self.order.device).reshape(self.order.shape)
                         % len(self.data))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.step.zero_()
                self._eager_step()
        torch.cuda.current_stream().wait_stream(side)
        # Why: the warm-up changed weights and Adam's moments; a fresh Adam's state is all zeros
        # (step 0, moments 0), so zeroing it and copying the weights back in place (the graph
        # keeps their addresses) starts training exactly where the eager loop would.
        with torch.no_grad():
            for tensor, saved in zip(_state_tensors(self.model), snapshot):
                tensor.copy_(saved)
            for state in self.optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        value.zero_()
        self.optimizer.zero_grad(set_to_none=True)  # the captured backward allocates the gradients
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: only this thread may not make unsafe CUDA calls while capturing; other
        # threads (MLflow's system-metrics monitor, its async logging) are not part of the step.
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self._body()
        # Keep the graph's gradient tensors alive: an eager step may set .grad to None.
        self._graph_grads = [p.grad for p in self.model.parameters()]

    def run(self, order: torch.Tensor, progress=None) -> tuple[torch.Tensor, list[int], torch.Tensor, torch.Tensor]:
        """Train on one epoch's ``order`` (from ``BatchIterator.epoch_order``).

        Returns
        -------
        tuple
            Per-batch losses (1-D, on the device), batch sizes, the correct count and the
            gradient-norm sums, for :func:`anncore.trainer._epoch_summary`.
        """
        plan = self.plan
        self.model.train()
        if self.capture and self.graph is None:
            self._capture()
        self._reset()
        self.order.copy_(order[: plan.full_batches * plan.batch_size].view(plan.full_batches, plan.batch_size))
        for _ in range(plan.full_batches):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._eager_step()
            if progress is not None:
                progress.update()
        losses, sizes = [self.losses], [plan.batch_size] * plan.full_batches
        if plan.remainder:
            losses.append(self._remainder_step(order[plan.full_batches * plan.batch_size : plan.samples]))
            sizes.append(plan.remainder)
            if progress is not None:
                progress.update()
        return torch.cat(losses), sizes, self.correct, self.grad_norm_sum

    def _remainder_step(self, index: torch.Tensor) -> torch.Tensor:
        """The last, smaller batch, eagerly; its loss (1-element tensor on the device)."""
        x, y = self.data.x.index_select(0, index), self.data.y.index_select(0, index)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.layers:
            self.grad_norm_sum += torch.stack([torch.linalg.vector_norm(layer.weight.grad) for layer in self.layers])
        self.optimizer.step()
        self.correct += (logits.detach().argmax(dim=1) == y).sum()
        return loss.detach().reshape(1)
