"""Refuse runs that cannot be meant at paper scale, before anything is written (``ckda run``).

Two silent traps of a paper-sized model (ViT-S width and above: the ``paper`` preset's ViT-B/16 is one):

- **random weights**: the published setting starts from ImageNet weights. A paper-sized run whose ``pretrained`` is
  unset trains from random initialisation, which nobody means by accident; it needs ``--pretrained FILE`` or an
  explicit ``--pretrained none`` (or a ``pretrained:`` key in the ``--config`` file, ``null`` for random weights).
- **the CPU**: one paper run on a CPU takes months. ``--device auto`` falls back to the CPU when CUDA is not visible
  (a driver too old for the installed torch wheel, or ``--executor ray`` with the default ``--gpus-per-run 0``, where
  Ray hides every GPU from the run), so a paper-sized run that would land on the CPU needs an explicit
  ``--device cpu``.

Each refusal is one `ConfigError` line; the CLI prints it as ``ckda: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import os
from typing import Any

from ckda_avalanche.runner.config import RunConfig
from ckda_avalanche.runner.overrides import ConfigError, load_config_file

__all__ = ["PAPER_SIZED_WIDTH", "is_paper_sized", "check_paper_scale"]

PAPER_SIZED_WIDTH = 384
"""Embedding width from which a model counts as paper-sized (ViT-S/16 is 384 wide, ViT-B/16 768)."""


def is_paper_sized(model: str) -> bool:
    """Whether the registered model ``model`` is at least ViT-S wide (too large to train on a CPU in practice)."""
    from ckda_avalanche.models.registry import get_model_config

    return get_model_config(model).embed_dim >= PAPER_SIZED_WIDTH


def _config_sets_pretrained(config_file: str | os.PathLike[str] | None) -> bool:
    if config_file is None:
        return False
    data: Any = load_config_file(config_file)  # already read (and validated) once by load_run_config
    return isinstance(data, dict) and "pretrained" in data


def check_paper_scale(
    config: RunConfig, *, preset: str, config_file: str | os.PathLike[str] | None = None,
    pretrained_flag: str | None = None, device: str = "auto", executor: str = "local", gpus_per_run: float = 0.0,
    cuda_available: bool | None = None,
) -> None:
    """Raise `ConfigError` for a paper-sized run without an explicit weight choice, or one that would silently run
    on the CPU (see the module docstring). ``cuda_available`` defaults to ``torch.cuda.is_available()``."""
    if not is_paper_sized(config.model):
        return
    what = f"--preset {preset}" if preset == "paper" else f"model {config.model!r} (paper-sized)"
    if config.pretrained is None and pretrained_flag is None and not _config_sets_pretrained(config_file):
        raise ConfigError(f"--pretrained: {what} starts from pretrained ViT weights; pass --pretrained FILE (a local "
                          f"ImageNet ViT-B/16 checkpoint: .pth, .safetensors or .npz), or --pretrained none to "
                          f"train from random initialisation on purpose")
    if device != "auto":
        if executor == "ray" and gpus_per_run == 0 and device.startswith("cuda"):
            raise ConfigError(f"--device {device}: with --executor ray and --gpus-per-run 0 Ray gives the runs no "
                              f"GPU; pass --gpus-per-run (e.g. 1, or 0.25 to pack four runs on one GPU)")
        return
    if executor == "ray":
        if gpus_per_run == 0:
            raise ConfigError(f"--device auto: {what} with --executor ray and --gpus-per-run 0 would train on the "
                              f"CPU (months per run); pass --gpus-per-run (e.g. 1, or 0.25 to pack four runs on one "
                              f"GPU), or --device cpu to train on the CPU on purpose")
        return
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if not cuda_available:
        raise ConfigError(f"--device auto: CUDA is not available here, so {what} would train on the CPU (months per "
                          f"run); check the GPU driver against torch's CUDA version, or pass --device cpu to train "
                          f"on the CPU on purpose")
