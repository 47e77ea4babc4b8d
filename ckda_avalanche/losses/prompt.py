"""Prompt consistency L_p and the optional prompt orthogonality penalty.

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4.4): L_p is the mean absolute difference between the
student's prompt image P(x) and the frozen previous-session teacher's prompt image P~(x). The orthogonality penalty
between P_spec and P_com is an option of this package, not part of the published setting.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from ckda_avalanche.losses.numerics import float32_loss

__all__ = ["prompt_consistency", "prompt_orthogonality"]


@float32_loss
def prompt_consistency(student_prompt: torch.Tensor, teacher_prompt: torch.Tensor) -> torch.Tensor:
    """L_p = mean |P - P~| over every element (teacher detached)."""
    if student_prompt.shape != teacher_prompt.shape:
        raise ValueError(
            f"prompt_consistency: student prompt {tuple(student_prompt.shape)} and teacher prompt "
            f"{tuple(teacher_prompt.shape)} must have the same shape"
        )
    return F.l1_loss(student_prompt, teacher_prompt.detach())


@float32_loss
def prompt_orthogonality(specific: torch.Tensor, common: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of cos(flatten(P_spec), flatten(P_com))^2: zero when the two prompts are orthogonal."""
    if specific.shape != common.shape:
        raise ValueError(
            f"prompt_orthogonality: P_spec {tuple(specific.shape)} and P_com {tuple(common.shape)} differ in shape"
        )
    a = F.normalize(specific.flatten(1), dim=1)
    b = F.normalize(common.flatten(1), dim=1)
    return (a * b).sum(1).pow(2).mean()
