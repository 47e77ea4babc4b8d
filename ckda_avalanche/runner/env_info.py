"""What a run records about where it ran (``env.json``): versions, git commit, device."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

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


def collect_env(device: torch.device) -> dict[str, Any]:
    """Versions of the relevant packages, the git commit of this checkout, the device and thread count."""
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
        "packages": versions,
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
    }
    return info
