"""``env.json`` records the CPU, its bf16 support and the precision; the tidy CSV gets one precision row."""
from __future__ import annotations

import json

import pytest
import torch

from ckda_avalanche.runner import env_info
from ckda_avalanche.runner.env_info import collect_env, cpu_model, precision_name, precision_rows

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile amx_bf16

processor\t: 1
model name\t: Some Other CPU
flags\t\t: fpu
"""


def test_precision_names_and_rows():
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == ["fp32", "bf16", "fp16"]
    with pytest.raises(ValueError, match="amp_dtype"):
        precision_name(torch.float64)
    assert precision_rows(torch.bfloat16) == [{"metric": "precision/bf16", "value": 1.0}]
    assert precision_rows(None) == [{"metric": "precision/fp32", "value": 1.0}]


def test_cpuinfo_parsing(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = env_info._cpuinfo(path)  # first processor block only
    assert info["model name"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_model({"Hardware": "BCM2835"}) == "BCM2835"  # ARM boards
    monkeypatch.setattr(env_info.platform, "processor", lambda: "")
    monkeypatch.setattr(env_info.platform, "machine", lambda: "aarch64")
    assert cpu_model({}) == "aarch64"
    assert env_info._cpuinfo(tmp_path / "missing") == {}


def test_collect_env_records_cpu_and_precision(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    real = env_info._cpuinfo
    monkeypatch.setattr(env_info, "_cpuinfo", lambda p=path: real(p))
    monkeypatch.setattr(env_info, "cpu_supports_bf16", lambda: True)
    env = collect_env(torch.device("cpu"), amp_dtype=torch.bfloat16)
    assert env["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert env["cpu_bf16"] is True and env["cpu_bf16_flags"] == ["avx512_bf16", "amx_bf16"]
    assert (env["precision"], env["amp_dtype"]) == ("bf16", "bfloat16")
    json.dumps(env)  # serialisable as env.json
    monkeypatch.setattr(env_info, "cpu_supports_bf16", lambda: False)
    env = collect_env(torch.device("cpu"), amp_dtype=None)
    assert (env["precision"], env["amp_dtype"], env["cpu_bf16"]) == ("fp32", None, False)
    assert collect_env(torch.device("cpu"))["precision"] == "unknown"  # caller did not say


def test_env_records_cuda_build_and_gpu_fields():
    info = collect_env(torch.device("cpu"))
    assert info["torch_cuda_version"] == torch.version.cuda
    assert info["device"] == "cpu" and info["cuda_available"] == torch.cuda.is_available()
    for key in ("gpu_name", "gpu_capability", "gpu_memory_bytes", "gpu_driver", "cuda_driver_version"):
        assert info[key] is None  # no GPU used by this run
