"""Per-session optimiser and warm-up + cosine learning-rate schedule (CKDA, docs/method.md §6).

The schedule is per iteration: linear warm-up from ``warmup_start_factor`` x lr over ``warmup_epochs`` epochs, then
cosine decay to ``min_lr_factor`` x lr at the last iteration of the session. torch's ``LambdaLR`` applies it; we only
supply the factor (torch has no single scheduler with both a warm-up start factor and a cosine floor as a factor).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["split_backbone_parameters", "build_optimizer", "rebuild_optimizer", "warmup_cosine_factor",
           "make_scheduler"]


def split_backbone_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(ViT blocks + patch embedding, everything else), trainable parameters only.

    Uses ``model.parameter_groups()`` when the model offers it (``ViTReID`` does); otherwise parameters whose dotted
    name contains a ``blocks`` or ``patch_embed`` component count as backbone.
    """
    if hasattr(model, "parameter_groups"):
        groups = model.parameter_groups()
        backbone, other = groups["patch_embed_and_blocks"], groups["other"]
    else:
        backbone, other = [], []
        for name, param in model.named_parameters():
            parts = name.split(".")
            (backbone if "blocks" in parts or "patch_embed" in parts else other).append(param)
    return [p for p in backbone if p.requires_grad], [p for p in other if p.requires_grad]


def _groups(model: nn.Module, lr: float, mult: float) -> list[dict]:
    backbone, other = split_backbone_parameters(model)
    groups = [{"params": backbone, "lr": lr * mult, "name": "patch_embed_and_blocks"},
              {"params": other, "lr": lr, "name": "other"}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: TrainConfig) -> Optimizer:
    """AdamW with the backbone group at ``backbone_lr_mult`` x lr."""
    return torch.optim.AdamW(_groups(model, config.lr, config.backbone_lr_mult), lr=config.lr,
                             weight_decay=config.weight_decay)


def rebuild_optimizer(template: Optimizer, model: nn.Module, config: TrainConfig) -> Optimizer:
    """A fresh optimiser of ``template``'s class and defaults over ``model``'s current trainable parameters.

    Used when the user supplied their own optimiser: Avalanche re-adds parameters each experience, and a fresh
    instance (new state, new classifier included) is the simplest correct way to do that with two groups.
    """
    defaults = dict(template.defaults)
    lr = float(defaults.pop("lr"))
    return type(template)(_groups(model, lr, config.backbone_lr_mult), lr=lr, **defaults)


def warmup_cosine_factor(step: int, *, total_steps: int, warmup_steps: int, start_factor: float,
                         min_factor: float) -> float:
    """Learning-rate factor at iteration ``step`` (0-based) of a session of ``total_steps`` iterations."""
    if warmup_steps > 0 and step < warmup_steps:
        return start_factor + (1.0 - start_factor) * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps - 1)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: Optimizer, config: TrainConfig, *, iterations_per_epoch: int,
                   epochs: int) -> LambdaLR:
    """Per-iteration ``LambdaLR`` with `warmup_cosine_factor`; call ``step()`` after every optimiser step."""
    total = max(1, iterations_per_epoch * epochs)
    warmup = min(total, iterations_per_epoch * config.warmup_epochs)

    def factor(step: int) -> float:
        return warmup_cosine_factor(step, total_steps=total, warmup_steps=warmup,
                                    start_factor=config.warmup_start_factor, min_factor=config.min_lr_factor)

    return LambdaLR(optimizer, factor)
