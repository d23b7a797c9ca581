"""Peak memory of one block of code: what it added, at its worst, to the process or the GPU.

On the CPU the figure is the resident set size (RSS): Linux keeps a high-water mark of it
(``VmHWM`` in ``/proc/self/status``) that a process may reset by writing ``5`` to
``/proc/self/clear_refs``. So the peak is exact, needs no sampling thread, and covers every
allocation (torch tensors, NumPy, Python objects, DataLoader buffers). Freed memory is handed
back to the system first (``gc.collect`` and glibc's ``malloc_trim``) so that an earlier
block's freed pages do not hide this block's needs. Elsewhere the process's lifetime
high-water mark (``ru_maxrss``) is the best available, and it is reported as such.

On a GPU the figure is torch's ``max_memory_allocated``: the peak of bytes held by tensors,
excluding the caching allocator's reserve and the CUDA context.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import re
import resource
import sys
from pathlib import Path
from types import TracebackType

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
RESET_PEAK_RSS = "5"  # clear_refs command: reset the peak resident set size (Linux >= 4.0)
MIB = 2**20

METHOD_GPU = "torch.cuda.max_memory_allocated above the allocation at the start"
METHOD_RSS = "peak RSS (Linux VmHWM, reset at the start) above the RSS at the start"
METHOD_LIFETIME = "process peak RSS (ru_maxrss) since start-up: an upper bound, not per pipeline"


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{STATUS} has no {field} line")
    return int(match.group(1))


def _can_reset_peak_rss() -> bool:
    try:
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


def _return_freed_memory() -> None:
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass


class PeakMemory:
    """Context manager measuring the peak memory a block adds, on ``device``.

    Attributes (after the block)
    ----------------------------
    added_mib : float
        Peak during the block minus the level at its start, in MiB.
    peak_mib : float
        The peak itself (process RSS, or GPU tensor memory), in MiB.
    method : str
        What was measured (one of the ``METHOD_*`` strings).

    Examples
    --------
    >>> with PeakMemory(torch.device("cpu")) as memory:
    ...     x = torch.ones(2**20)
    >>> memory.added_mib >= 0
    True
    """

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.added_mib = float("nan")
        self.peak_mib = float("nan")
        self.method = ""
        self._start_bytes = 0

    def __enter__(self) -> PeakMemory:
        _return_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start_bytes = torch.cuda.memory_allocated(self.device)
            self.method = METHOD_GPU
        elif _can_reset_peak_rss():
            self._start_bytes = _status_kib("VmRSS") * 1024
            self.method = METHOD_RSS
        else:
            self._start_bytes = 0
            self.method = METHOD_LIFETIME
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.method == METHOD_GPU:
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method == METHOD_RSS:
            peak = _status_kib("VmHWM") * 1024
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        self.peak_mib = peak / MIB
        self.added_mib = (peak - self._start_bytes) / MIB
