"""Measured peaks: the session's RSS high-water mark (reset per session on Linux) and, on CUDA, torch's peaks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ckda_avalanche.runner import peak_memory
from ckda_avalanche.runner.peak_memory import SessionPeakMemory


def _rows(rows):
    return {r["metric"]: r["value"] for r in rows}


@pytest.mark.skipif(not peak_memory._STATUS.exists(), reason="needs /proc/self/status (Linux)")
def test_rss_peak_is_the_sessions_own():
    big = np.ones(400 * 2**20 // 8)  # 400 MiB touched, then freed: a high-water mark before the session
    big[::512] += 1
    del big
    before, _ = peak_memory.current_peak_rss()
    peaks = SessionPeakMemory(torch.device("cpu"))
    peaks.start()
    first = _rows(peaks.rows())
    assert set(first) == {"peak_rss_bytes", "peak_rss_scope"}  # no GPU rows on the CPU
    if first["peak_rss_scope"] == 1.0:  # the kernel allowed the reset: the earlier 400 MiB are not in it
        assert first["peak_rss_bytes"] < before - 300 * 2**20
    chunk = np.ones(200 * 2**20 // 8)
    chunk[::512] += 1
    second = _rows(peaks.rows())["peak_rss_bytes"]
    del chunk
    assert second >= first["peak_rss_bytes"] + 190 * 2**20  # the 200 MiB touched during the session count


def test_process_scope_fallback(monkeypatch):
    monkeypatch.setattr(peak_memory, "_reset_hwm", lambda: False)
    peaks = SessionPeakMemory(torch.device("cpu"))
    peaks.start()
    rows = _rows(peaks.rows())
    if rows:  # resource is available on every POSIX system
        assert rows["peak_rss_scope"] == 0.0 and rows["peak_rss_bytes"] == pytest.approx(peak_memory._ru_maxrss(),
                                                                                          rel=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peaks():
    device = torch.device("cuda")
    peaks = SessionPeakMemory(device)
    peaks.start()
    x = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)
    rows = _rows(peaks.rows())
    del x
    assert rows["peak_gpu_allocated_bytes"] >= 64 * 2**20
    assert rows["peak_gpu_reserved_bytes"] >= rows["peak_gpu_allocated_bytes"]
