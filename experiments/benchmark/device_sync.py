"""Wait for a device's queued work, so that a timer read next measures the work and not its launch."""

from __future__ import annotations

import torch


def synchronize(device: torch.device | str) -> None:
    """Block until every kernel queued on ``device`` has finished (CUDA and MPS run asynchronously; the CPU does not)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
