"""What only a CUDA machine can check: training on the GPU agrees with the CPU, data and model live
there, and the benchmark runs there. Marked ``cuda``: skipped without a CUDA device (see
``tests/conftest.py``); ``scripts/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from anncore.data import BatchIterator, load_fashion_mnist, move_to_device
from anncore.models import CustomANN
from anncore.trainer import TrainConfig, set_seed, train
from experiments.benchmark import cli as benchmark
from experiments.benchmark.memory import METHOD_GPU, PeakMemory
from experiments.benchmark.peak import MATMUL_SIZES
from experiments.benchmark.pipelines import PIPELINES

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


def tiny_training(root: Path, device: str):
    """Two epochs of a 784-32-10 network without dropout (its random masks differ between devices)."""
    train_data = load_fashion_mnist(root, train=True, download=False)
    test_data = load_fashion_mnist(root, train=False, download=False)
    set_seed(0)
    model = CustomANN([784, 32, 10])  # built on the CPU: the same initial weights for both devices
    config = TrainConfig(epochs=2, batch_size=64, device=device, progress=False, seed=0)
    return train(model, train_data, test_data, config)


def test_training_on_cuda_matches_the_cpu(tiny_fashion_root: Path) -> None:
    # TF32 is off for fp32 matmuls by default, so only summation order differs between devices.
    assert not torch.backends.cuda.matmul.allow_tf32
    cpu = tiny_training(tiny_fashion_root, "cpu")
    gpu = tiny_training(tiny_fashion_root, "cuda")
    for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert gpu.history[column].tolist() == pytest.approx(cpu.history[column].tolist(), rel=1e-3, abs=1e-3), column
    for (name, theirs), mine in zip(cpu.model.state_dict().items(), gpu.model.state_dict().values()):
        assert mine.device.type == "cuda"
        torch.testing.assert_close(mine.cpu(), theirs, rtol=1e-3, atol=1e-4, msg=name)
    assert gpu.evaluation.accuracy == pytest.approx(cpu.evaluation.accuracy, abs=2 / len(gpu.evaluation.labels))


def test_data_and_batches_move_to_the_gpu_once(tiny_fashion_root: Path) -> None:
    train_data = load_fashion_mnist(tiny_fashion_root, train=True, download=False)
    test_data = load_fashion_mnist(tiny_fashion_root, train=False, download=False)
    on_gpu, test_on_gpu = move_to_device(train_data, test_data, CUDA)
    assert on_gpu.x.device.type == on_gpu.y.device.type == test_on_gpu.x.device.type == "cuda"
    assert torch.equal(on_gpu.x.cpu(), train_data.x) and torch.equal(on_gpu.y.cpu(), train_data.y)
    again, _ = move_to_device(on_gpu, test_on_gpu, CUDA)
    assert again.x.data_ptr() == on_gpu.x.data_ptr()  # already there: not copied
    x, y = next(iter(BatchIterator(on_gpu, 128, shuffle=True, seed=0)))
    assert x.device.type == y.device.type == "cuda" and x.shape == (128, *train_data.x.shape[1:])


def test_peak_memory_on_the_gpu_sees_a_64_mib_tensor() -> None:
    with PeakMemory(CUDA) as memory:
        block = torch.ones(16 * 2**20, device=CUDA)  # 64 MiB of float32
        del block
    assert memory.method == METHOD_GPU
    assert memory.added_mib == pytest.approx(64, abs=1)


def test_quick_benchmark_runs_on_cuda(tiny_fashion_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "benchmark.json"
    status = benchmark.main(["--device", "cuda", "--data-dir", str(tiny_fashion_root), "--quick", "--no-progress",
                             "--json", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    assert results["environment"]["device"].startswith("cuda")
    assert results["environment"]["device_name"] == torch.cuda.get_device_name(0)
    assert results["peak"]["size"] == MATMUL_SIZES["cuda"]
    for name, figures in results["pipelines"].items():
        assert figures["peak_memory_method"] == METHOD_GPU, name
        assert figures["seconds_per_epoch"] > 0 and 0 < figures["fraction_of_peak"] < 1, name
    assert "fused=True" in results["pipelines"]["anncore"]["optimizer"]
    # On CUDA the captured floor is timed too, and anncore is measured against it.
    assert list(results["pipelines"]) == [*PIPELINES, "captured_floor"]
    assert "capturable=True" in results["pipelines"]["captured_floor"]["optimizer"]
    spe = {name: figures["seconds_per_epoch"] for name, figures in results["pipelines"].items()}
    assert results["ratios"]["anncore_over_captured_floor"] == pytest.approx(spe["anncore"] / spe["captured_floor"])
    assert "anncore_over_captured_floor" in results["targets"]
    for figures in results["pipelines"].values():
        assert figures["microseconds_per_step"] == pytest.approx(figures["seconds_per_epoch"] / figures["steps_per_epoch"] * 1e6)


def graph_training(root: Path, cuda_graphs: bool, dropout: float = 0.0, max_batches: int | None = None):
    """Two epochs on the GPU, eager or through the captured step, from the same initial weights."""
    train_data = load_fashion_mnist(root, train=True, download=False)
    test_data = load_fashion_mnist(root, train=False, download=False)
    set_seed(0)
    model = CustomANN([784, 64, 32, 10], dropout_rate=dropout)
    config = TrainConfig(epochs=2, batch_size=64, device="cuda", progress=False, seed=0,
                         cuda_graphs=cuda_graphs, track_grad_norms=True, max_batches=max_batches)
    return train(model, train_data, test_data, config)


@pytest.mark.parametrize("max_batches", [None, 4])
def test_the_captured_step_gives_the_eager_losses(tiny_fashion_root: Path, max_batches: int | None) -> None:
    eager = graph_training(tiny_fashion_root, cuda_graphs=False, max_batches=max_batches)
    graph = graph_training(tiny_fashion_root, cuda_graphs=True, max_batches=max_batches)
    columns = ["train_loss", "train_acc", "test_loss", "test_acc", "grad_norm/layer1", "grad_norm/layer3"]
    for column in columns:
        assert graph.history[column].tolist() == pytest.approx(eager.history[column].tolist(), rel=1e-4, abs=1e-5), column
    for (name, theirs), mine in zip(eager.model.state_dict().items(), graph.model.state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5, msg=name)


def test_the_captured_step_replays_a_graph_and_trains_with_dropout(tiny_fashion_root: Path) -> None:
    from anncore.cuda_graph_step import BatchPlan, CapturedEpochs
    from anncore.trainer import make_optimizer, train_captured_epoch

    data = load_fashion_mnist(tiny_fashion_root, train=True, download=False).to(CUDA)
    set_seed(0)
    model = CustomANN([784, 64, 10], dropout_rate=0.5).to(CUDA)
    config = TrainConfig(device="cuda", learning_rate=3e-3)
    optimizer = make_optimizer(model, config, CUDA, capturable=True)
    assert optimizer.defaults["capturable"] and optimizer.defaults["fused"]
    batches = BatchIterator(data, 64, True, 0)
    captured = CapturedEpochs(model, optimizer, data, BatchPlan.of(batches))
    first = train_captured_epoch(captured, batches, 1)
    assert captured.graph is not None
    rows = [train_captured_epoch(captured, batches, epoch) for epoch in range(2, 6)]
    assert first["samples"] == rows[-1]["samples"] == len(data)
    assert rows[-1]["train_loss"] < first["train_loss"]  # it learns: the graph's step moves the weights
    assert all(0 < row["train_loss"] < 10 for row in rows)
