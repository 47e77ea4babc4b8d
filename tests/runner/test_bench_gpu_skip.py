"""benchmarks/bench_gpu.py runs its skip mode where there is no CUDA: the same code paths at tiny size on the CPU,
and a JSON that says so."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_skip_mode_writes_json(tmp_path):
    bench = _load()
    out = tmp_path / "gpu.json"
    bench.run(out, force_skip=True, compile_variants=())
    result = json.loads(out.read_text())
    assert result["mode"] == "skip" and result["device"] == "cpu"
    assert result["cuda_available"] == torch.cuda.is_available()
    assert result["end_to_end"] == {"skipped": "no CUDA"} and result["packing"] == {"skipped": "no CUDA"}
    rows = result["steps"]["rows"]
    assert {(r["method"], r["amp"]) for r in rows} == {("finetune", "off"), ("ckda_s2", "off")}
    for row in rows:
        assert "error" not in row, row
        assert row["loss_finite"] and math.isfinite(row["images_per_s"]) and row["images_per_s"] > 0
        assert row["peak_gpu_reserved_bytes"] is None and not row["scaler"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_step_uses_a_grad_scaler():
    bench = _load()
    row = bench.time_steps("finetune", model_name="test", amp="fp16", device=torch.device("cuda"), ids=2, instances=2,
                           steps=2, warmup=1, compile_backend=None)
    assert row["scaler"] and row["loss_finite"] and row["peak_gpu_allocated_bytes"] > 0
