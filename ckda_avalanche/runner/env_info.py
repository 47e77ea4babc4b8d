"""What a run records about where it ran (``env.json``): versions, git commit, the device actually used, CPU, GPU
(torch's CUDA build, GPU name, capability, memory, driver) and precision.

Precision matters for comparing numbers: the same command trains in bf16 autocast on a CPU with native bf16
(AVX-512 BF16 / AMX, `strategies.precision.cpu_supports_bf16`) and in float32 on one without (``TrainConfig.amp =
"auto"``), and the metrics differ. ``env.json`` therefore records the CPU model, its bf16 capability and the autocast
dtype the run actually used; the runner also writes the precision into the tidy CSV (`precision_rows`), which is
what the leaderboard reads.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from ckda_avalanche.evaluation.tidy_logger import PRECISION_METRIC_PREFIX
from ckda_avalanche.strategies.precision import cpu_supports_bf16

__all__ = ["ENV_JSON", "collect_env", "cpu_model", "cuda_info", "precision_name", "precision_rows", "write_env"]

_PRECISIONS: dict[torch.dtype | None, str] = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_NOT_GIVEN = object()

_PACKAGES = ("torch", "torchvision", "avalanche-lib", "timm", "numpy", "pandas", "matplotlib", "ckda-avalanche")


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True,
        timeout=10, check=False,
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def precision_name(amp_dtype: torch.dtype | None) -> str:
    """Short name of an autocast dtype: ``"fp32"`` (None: no autocast), ``"bf16"`` or ``"fp16"``."""
    try:
        return _PRECISIONS[amp_dtype]
    except KeyError:
        raise ValueError(f"amp_dtype: expected None, torch.bfloat16 or torch.float16, got {amp_dtype!r}") from None


def precision_rows(amp_dtype: torch.dtype | None) -> list[dict[str, object]]:
    """The run-level tidy row (``metric``, ``value``) recording ``amp_dtype`` for one session."""
    return [{"metric": PRECISION_METRIC_PREFIX + precision_name(amp_dtype), "value": 1.0}]


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor block of ``/proc/cpuinfo`` as key -> value ({} where there is no such file)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if info:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    return info


def cpu_model(cpuinfo: dict[str, str] | None = None) -> str:
    """CPU model name (``model name`` of /proc/cpuinfo, else `platform.processor`, else the machine type)."""
    info = _cpuinfo() if cpuinfo is None else cpuinfo
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if info.get(key):
            return info[key]
    return platform.processor() or platform.machine() or "unknown"


def _nvidia_driver() -> str | None:
    """The NVIDIA driver release (``nvidia-smi``), else None (no tool, no GPU, or it failed)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def cuda_info(device: torch.device) -> dict[str, Any]:
    """torch's CUDA build, whether CUDA is usable, and (when ``device`` is a CUDA device) its name, compute
    capability, total memory, the driver (release from ``nvidia-smi``, and the CUDA version the driver supports)."""
    info: dict[str, Any] = {
        "torch_cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": bool(torch.cuda.is_available()),
        "cuda_device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "gpu_name": None, "gpu_capability": None, "gpu_memory_bytes": None, "gpu_driver": None,
        "cuda_driver_version": None,
    }
    if device.type != "cuda":
        return info
    props = torch.cuda.get_device_properties(device)
    info.update(gpu_name=props.name, gpu_capability=f"{props.major}.{props.minor}",
                gpu_memory_bytes=int(props.total_memory), gpu_driver=_nvidia_driver())
    get_driver = getattr(torch._C, "_cuda_getDriverVersion", None)  # e.g. 12080 -> "12.8"
    if get_driver is not None:
        try:
            version = int(get_driver())
            info["cuda_driver_version"] = f"{version // 1000}.{version % 1000 // 10}"
        except (RuntimeError, ValueError):
            pass
    return info


def collect_env(device: torch.device, *, amp_dtype: torch.dtype | None | object = _NOT_GIVEN) -> dict[str, Any]:
    """Versions of the relevant packages, the git commit of this checkout, the device and thread count, the CPU
    model and its bf16 support, and (when ``amp_dtype`` is given: the strategy's ``amp_dtype``, None for float32)
    the autocast dtype and precision the run uses; ``precision`` is ``"unknown"`` when it is not given."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        **cuda_info(device),
        "packages": versions,
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
    }
    cpuinfo = _cpuinfo()
    flags = set(cpuinfo.get("flags", "").split())
    info["cpu_model"] = cpu_model(cpuinfo)
    info["cpu_bf16"] = cpu_supports_bf16()
    info["cpu_bf16_flags"] = [f for f in _CPU_BF16_FLAGS if f in flags] if flags else None
    if device.type == "cuda":
        info["cuda_bf16"] = bool(torch.cuda.is_bf16_supported())
    if amp_dtype is _NOT_GIVEN:
        info["amp_dtype"], info["precision"] = None, "unknown"
    else:
        info["precision"] = precision_name(amp_dtype)  # type: ignore[arg-type]
        info["amp_dtype"] = None if amp_dtype is None else str(amp_dtype).removeprefix("torch.")
    return info


ENV_JSON = "env.json"
"""File of a run folder recording `collect_env` when the run started."""


def write_env(run_dir: Path, device: torch.device, *, amp_dtype: torch.dtype | None) -> None:
    """Write ``RUN_DIR/env.json``: `collect_env` with the autocast dtype the run's strategy uses."""
    from ckda_avalanche.runner.atomic import atomic_write_json

    env = collect_env(device, amp_dtype=amp_dtype)
    atomic_write_json(Path(run_dir) / ENV_JSON, env)
