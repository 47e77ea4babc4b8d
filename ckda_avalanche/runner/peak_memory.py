"""Measured peak memory of one session (training and its evaluation), as run-level tidy rows.

Rows (one each per session, ``eval_dataset = "-"``), next to the ``memory_bytes/<kind>`` rows (which are the bytes
*kept* between sessions, not what a session needs):

- ``peak_rss_bytes``: peak resident set size of the process. On Linux the kernel's high-water mark is reset at the
  start of each session (``/proc/self/clear_refs``, value 5) and read from ``VmHWM`` of ``/proc/self/status``, so
  the value is the session's own peak; where that reset is not possible (other systems, or a kernel refusing it) it
  is ``ru_maxrss`` of `resource.getrusage`: the peak of the whole process *so far* (a later session then never
  reports less than an earlier one). ``peak_rss_scope`` records which: 1.0 for the session, 0.0 for the process.
  The RSS includes the process's share of the decoded-image cache and of the DataLoader's parent side; worker
  processes are separate processes and are not counted.
- ``peak_gpu_allocated_bytes`` / ``peak_gpu_reserved_bytes``: ``torch.cuda.max_memory_allocated`` /
  ``max_memory_reserved`` of the run's CUDA device since the session started (reset then); only on CUDA. The
  reserved figure (the caching allocator's pool) is what another run packed on the same GPU cannot use.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

__all__ = ["PEAK_METRICS", "SessionPeakMemory", "current_peak_rss"]

PEAK_METRICS: tuple[str, ...] = ("peak_rss_bytes", "peak_gpu_allocated_bytes", "peak_gpu_reserved_bytes")
"""Run-level metric names of the measured peaks."""

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _vm_hwm() -> int | None:
    try:
        for line in _STATUS.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _ru_maxrss() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, kB on Linux


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5", encoding="ascii")
    except OSError:
        return False
    return _vm_hwm() is not None


def current_peak_rss() -> tuple[int | None, bool]:
    """(peak RSS in bytes, whether it is since the last reset) without resetting anything."""
    hwm = _vm_hwm()
    return (hwm, True) if hwm is not None else (_ru_maxrss(), False)


class SessionPeakMemory:
    """``start()`` at the beginning of a session, ``rows()`` after it (its training and evaluation)."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self._session_scope = False

    def start(self) -> None:
        """Reset the peaks that can be reset: the kernel's RSS high-water mark and CUDA's peak statistics."""
        self._session_scope = _reset_hwm()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def rows(self) -> list[dict[str, object]]:
        """The tidy rows (``metric``, ``value``) of the peaks since `start` (see the module docstring)."""
        rows: list[dict[str, object]] = []
        rss = _vm_hwm() if self._session_scope else _ru_maxrss()
        if rss is not None:
            rows += [{"metric": "peak_rss_bytes", "value": float(rss)},
                     {"metric": "peak_rss_scope", "value": 1.0 if self._session_scope else 0.0}]
        if self.device.type == "cuda":
            allocated = torch.cuda.max_memory_allocated(self.device)
            reserved = torch.cuda.max_memory_reserved(self.device)
            rows += [{"metric": "peak_gpu_allocated_bytes", "value": float(allocated)},
                     {"metric": "peak_gpu_reserved_bytes", "value": float(reserved)}]
        return rows
