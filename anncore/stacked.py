"""K same-shape dense networks trained at once, as one stacked program.

On a GPU one small network at batch 128 leaves the device idle between launches; K networks of
the same shape (layer sizes, activation, batch size) stacked along a leading member axis train
in the same launches: each layer is one batched matrix product ``(K, B, fan_in) @ (K, fan_in,
fan_out)``, and one Adam step updates every member's weights. Each member keeps its own learning
rate and dropout rate, sees the same batches in the same order as a separate :func:`anncore.trainer.train`
with the same seed would, and can leave the stack at an epoch boundary (pruned), so the others go on
without it.

Each member's loss is its own mean cross-entropy; the stack minimises their sum, whose gradient
with respect to a member's weights is that member's own gradient (the members share no weights),
so with dropout off a member trains exactly as it would alone, up to float rounding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from anncore.activations import torch_activation
from anncore.data import BatchIterator, TensorData, move_to_device
from anncore.models import CustomANN
from anncore.trainer import NonFiniteLossError, TrainConfig, resolve_device, set_seed

# What a member's TrainConfig may set on its own; every other field is the stack's.
PER_MEMBER_FIELDS = ("learning_rate",)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which train() uses

EpochCallback = Callable[[int, dict[int, dict]], Iterable[int]]


class StackedMLP(nn.Module):
    """The weights of K :class:`~anncore.models.CustomANN` of one shape, stacked on axis 0.

    Parameters
    ----------
    models : sequence of CustomANN
        Same layer sizes and activation, no output activation; dropout rates may differ.
    """

    def __init__(self, models: Sequence[CustomANN]) -> None:
        super().__init__()
        first = _check_same_shape(models)
        self.layer_sizes = list(first.layer_sizes)
        self.activation = torch_activation(first.activation_name)
        layers = [model.linear_layers() for model in models]
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].weight.detach().transpose(0, 1) for ls in layers]).clone())
             for i in range(len(layers[0]))]
        )
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].bias.detach() for ls in layers]).unsqueeze(1).clone())
             for i in range(len(layers[0]))]
        )
        self.register_buffer("dropout", torch.tensor([m.dropout_rate for m in models], dtype=torch.float32))
        self.any_dropout = any(m.dropout_rate > 0 for m in models)  # on the host: no device read per batch

    @property
    def members(self) -> int:
        """How many networks are in the stack."""
        return len(self.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, in) inputs (or images, flattened), shared by all members, to (K, B, out) logits."""
        h = x.flatten(1) if x.dim() > 2 else x
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            # (B, in) @ (K, in, out) broadcasts to (K, B, out); then (K, B, in) @ (K, in, out).
            h = torch.baddbmm(bias, h.expand(self.members, *h.shape) if h.dim() == 2 else h, weight)
            if i < last:
                h = self.activation(h)
                if self.training and self.any_dropout:
                    keep = 1.0 - self.dropout.view(-1, 1, 1)
                    h = h * (torch.rand_like(h) < keep) / keep  # member k keeps with probability 1 - p_k
        return h

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the members at ``index`` (int64, on the weights' device), in that order."""
        with torch.no_grad():
            for tensor in [*self.weights, *self.biases]:
                tensor.data = tensor.data.index_select(0, index)
            self.dropout = self.dropout.index_select(0, index)
        self.any_dropout = bool((self.dropout > 0).any())

    def write_member(self, k: int, model: CustomANN) -> CustomANN:
        """Copy member ``k``'s weights into ``model`` (in place, on its device); return it."""
        with torch.no_grad():
            for layer, weight, bias in zip(model.linear_layers(), self.weights, self.biases):
                layer.weight.copy_(weight[k].transpose(0, 1))
                layer.bias.copy_(bias[k, 0])
        return model


def _check_same_shape(models: Sequence[CustomANN]) -> CustomANN:
    if not models or not all(isinstance(m, CustomANN) for m in models):
        raise TypeError(f"models must be a non-empty sequence of CustomANN, got {models!r}")
    first = models[0]
    for k, model in enumerate(models):
        shape = (model.layer_sizes, model.activation_name, model.output_activation_name)
        if shape != (first.layer_sizes, first.activation_name, None):
            raise ValueError(
                f"models[{k}] is {model.architecture} {model.activation_name} (output activation "
                f"{model.output_activation_name}); a stack needs one shape: {first.architecture} "
                f"{first.activation_name} without output activation"
            )
    return first


class StackedAdam:
    """Adam (torch's update, defaults betas and eps) with one learning rate per stack member.

    ``torch.optim.Adam`` takes one learning rate per parameter group, and a stacked weight is one
    tensor holding every member; here the rate is a (K,) tensor broadcast over each member's slice.
    """

    def __init__(self, params: Sequence[nn.Parameter], learning_rates: torch.Tensor) -> None:
        self.params = list(params)
        self.lr = learning_rates
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every member (torch's ``_single_tensor_adam`` formula)."""
        beta1, beta2 = ADAM_BETAS
        self.steps += 1
        bias1, bias2_sqrt = 1 - beta1**self.steps, math.sqrt(1 - beta2**self.steps)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / bias2_sqrt).add_(ADAM_EPS)
            step_size = (self.lr / bias1).view(-1, *([1] * (p.dim() - 1)))
            p.addcdiv_(m * step_size, denom, value=-1.0)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def keep(self, index: torch.Tensor) -> None:
        """Keep the moments and rates of the members at ``index`` (the stack's new params)."""
        self.lr = self.lr.index_select(0, index)
        self.exp_avg = [m.index_select(0, index) for m in self.exp_avg]
        self.exp_avg_sq = [v.index_select(0, index) for v in self.exp_avg_sq]


@dataclass
class StackedResult:
    """What :func:`train_stacked` returns.

    Attributes
    ----------
    histories : dict
        Member index -> its per-epoch history (the columns of :func:`anncore.trainer.train`'s,
        but the timing ones are the whole stack's epoch).
    models : list of CustomANN
        The caller's models, holding each member's weights when it left the stack or finished.
    left_at : dict
        Member index -> the epoch after which it was pruned (finished members are absent).
    errors : dict
        Member index -> the ``NonFiniteLossError`` that removed it.
    """

    histories: dict[int, pd.DataFrame]
    models: list[CustomANN]
    left_at: dict[int, int] = field(default_factory=dict)
    errors: dict[int, NonFiniteLossError] = field(default_factory=dict)


def _shared_config(configs: Sequence[TrainConfig]) -> TrainConfig:
    if not configs or not all(isinstance(c, TrainConfig) for c in configs):
        raise TypeError(f"configs must be a non-empty sequence of TrainConfig, got {configs!r}")
    first = configs[0]
    if first.optimizer != "adam":
        raise ValueError(f"a stack trains with optimizer 'adam', got {first.optimizer!r}")
    for k, config in enumerate(configs):
        for f in fields(TrainConfig):
            if f.name not in PER_MEMBER_FIELDS and getattr(config, f.name) != getattr(first, f.name):
                raise ValueError(
                    f"configs[{k}].{f.name} is {getattr(config, f.name)!r} but configs[0]'s is "
                    f"{getattr(first, f.name)!r}; members may differ only in {list(PER_MEMBER_FIELDS)}"
                )
    return first


def _train_pass(stack: StackedMLP, optimizer: StackedAdam, batches: BatchIterator) -> tuple[torch.Tensor, torch.Tensor, int, list[torch.Tensor]]:
    """One epoch over ``batches``: per-member loss sums and correct counts (K,), on the device, and
    each batch's per-member losses (kept on the device to name a non-finite one's batch)."""
    stack.train()
    k = stack.members
    loss_sum = torch.zeros(k, device=batches.data.device)
    correct = torch.zeros(k, dtype=torch.int64, device=batches.data.device)
    samples, batch_losses = 0, []
    for x, y in batches:
        logits = stack(x)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(k), reduction="none").view(k, -1).mean(1)
        optimizer.zero_grad()
        losses.sum().backward()  # member k's gradient is that of its own loss alone
        optimizer.step()
        batch_losses.append(losses.detach())
        loss_sum += losses.detach() * len(y)
        correct += (logits.detach().argmax(dim=2) == y).sum(dim=1)
        samples += len(y)
    return loss_sum, correct, samples, batch_losses


def _evaluate(stack: StackedMLP, data: TensorData, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean loss and accuracy (K,) on ``data``, in eval mode, without autograd."""
    stack.eval()
    k = stack.members
    loss_sum = torch.zeros(k, device=data.x.device)
    correct = torch.zeros(k, dtype=torch.int64, device=data.x.device)
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
            logits = stack(x)
            loss_sum += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(k), reduction="none").view(k, -1).sum(1)
            correct += (logits.argmax(dim=2) == y).sum(dim=1)
    return loss_sum / len(data), correct.to(loss_sum.dtype) / len(data)


def _epoch_rows(epoch: int, members: list[int], sums: list[torch.Tensor], samples: int, seconds: tuple[float, float]) -> dict[int, dict]:
    """The members' history rows from the epoch's device figures, read in one transfer."""
    loss_sum, correct, test_loss, test_acc = torch.stack([s.to(torch.float64) for s in sums]).tolist()
    epoch_time, eval_time = seconds
    rows = {}
    for j, member in enumerate(members):
        rows[member] = {
            "epoch": epoch,
            "train_loss": loss_sum[j] / samples,
            "train_acc": correct[j] / samples,
            "test_loss": test_loss[j],
            "test_acc": test_acc[j],
            "epoch_time_s": epoch_time,
            "samples_per_sec": samples / epoch_time,
            "eval_time_s": eval_time,
        }
    return rows


def train_stacked(
    models: Sequence[CustomANN],
    train_data: TensorData,
    test_data: TensorData,
    configs: Sequence[TrainConfig],
    on_epoch: EpochCallback | None = None,
) -> StackedResult:
    """Train K same-shape models at once, each as :func:`anncore.trainer.train` would alone.

    Parameters
    ----------
    models : sequence of CustomANN
        The members (same layer sizes and activation); their dropout rates may differ. Their
        weights are the starting point, and receive the trained weights.
    train_data, test_data : TensorData
        ``test_data`` is what each epoch evaluates on (the validation split in a search).
    configs : sequence of TrainConfig
        One per member, equal but for ``learning_rate``; Adam only.
    on_epoch : callable, optional
        ``on_epoch(epoch, rows)`` after every epoch with ``rows`` = member index -> its history
        row (members still in the stack); returns the member indices to prune (they leave the
        stack now, keeping this epoch's weights).

    Returns
    -------
    StackedResult
    """
    config = _shared_config(configs)
    if len(configs) != len(models):
        raise ValueError(f"{len(models)} models but {len(configs)} configs; give one config per model")
    device = resolve_device(config.device)
    set_seed(config.seed)
    train_data, test_data = move_to_device(train_data, test_data, device)
    stack = StackedMLP(models).to(device)
    optimizer = StackedAdam(list(stack.weights) + list(stack.biases),
                            torch.tensor([c.learning_rate for c in configs], device=device))
    batches = BatchIterator(train_data, config.batch_size, True, config.seed, config.max_batches)
    members = list(range(len(models)))
    result = StackedResult({m: [] for m in members}, list(models))
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss_sum, correct, samples, batch_losses = _train_pass(stack, optimizer, batches)
        middle = time.perf_counter()
        test_loss, test_acc = _evaluate(stack, test_data, config.eval_batch_size)
        rows = _epoch_rows(epoch, members, [loss_sum, correct, test_loss, test_acc], samples,
                           (middle - start, time.perf_counter() - middle))
        leaving = _failed(epoch, rows, batch_losses, members, result)
        for member, row in rows.items():
            if member not in result.errors:
                result.histories[member].append(row)
        live = {m: r for m, r in rows.items() if m not in result.errors}
        leaving |= set(on_epoch(epoch, live) if on_epoch is not None and live else ()) & set(live)
        if epoch == config.epochs:
            leaving = set(members)
        members = _leave(stack, optimizer, members, leaving, epoch, result, final=epoch == config.epochs)
        if not members:
            break
    result.histories = {m: pd.DataFrame(rows) for m, rows in result.histories.items()}
    return result


def _failed(epoch: int, rows: dict[int, dict], batch_losses: list[torch.Tensor], members: list[int],
            result: StackedResult) -> set[int]:
    """Members whose training loss is not finite: recorded as errors naming the first bad batch, to leave the stack."""
    failed = {member for member, row in rows.items() if not math.isfinite(row["train_loss"])}
    if failed:
        losses = torch.stack(batch_losses)  # (batches, K)
        for j, member in enumerate(members):
            if member in failed:
                bad = torch.nonzero(~torch.isfinite(losses[:, j])).flatten()
                batch = int(bad[0]) if len(bad) else int(losses[:, j].argmax())  # finite but the sum overflowed
                result.errors[member] = NonFiniteLossError(epoch, batch + 1, float(losses[batch, j]))
    return failed


def _leave(stack: StackedMLP, optimizer: StackedAdam, members: list[int], leaving: set[int], epoch: int,
           result: StackedResult, final: bool) -> list[int]:
    """Write the leaving members' weights into their models and drop them from the stack."""
    for j, member in enumerate(members):
        if member in leaving:
            stack.write_member(j, result.models[member])
            if not final and member not in result.errors:
                result.left_at[member] = epoch
    staying = [j for j, member in enumerate(members) if member not in leaving]
    if staying and len(staying) < len(members):
        index = torch.tensor(staying, device=stack.dropout.device)
        stack.keep(index)
        optimizer.keep(index)
        optimizer.params = list(stack.weights) + list(stack.biases)
    return [members[j] for j in staying]
