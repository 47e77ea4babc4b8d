"""Learning without Forgetting (LwF) distillation terms, adapted to re-identification.

Li & Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2017. LwF records the old model's outputs on the new
task's data and keeps the new model's outputs for the old task close to them with a temperature-softened
cross-entropy (knowledge distillation, Hinton et al. 2015).

Two readings of "the old model's outputs" are offered for ReID:

* :func:`logit_distillation_loss` - the literal LwF term on the old session's identity logits;
* :func:`affinity_distillation_loss` - the old model's **batch affinity** (softmax over cosine similarities of the
  batch's features), the relational form that lifelong-ReID work uses (e.g. LSTKC, Xu et al. AAAI 2024), because
  retrieval depends on feature geometry, not on a classifier over identities that never reappear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from ckda_avalanche.losses.numerics import float32_loss


@float32_loss
def batch_affinity(features: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Row-stochastic affinity ``softmax_j(cos(f_i, f_j) / temperature)`` of a batch of features ``(B, D)``.

    The diagonal (a sample with itself) is kept, as in the LSTKC formulation.
    """
    if features.dim() != 2:
        raise ValueError(f"batch_affinity: features must be (B, D), got shape {tuple(features.shape)}")
    if temperature <= 0:
        raise ValueError(f"batch_affinity: temperature must be > 0, got {temperature}")
    normed = F.normalize(features, dim=1)
    return torch.softmax(normed @ normed.t() / temperature, dim=1)


@float32_loss
def rowwise_kl(target: torch.Tensor, affinity: torch.Tensor) -> torch.Tensor:
    """``KL(target || affinity)`` averaged over rows (``batchmean``) for row-stochastic ``(B, B)`` matrices."""
    if target.shape != affinity.shape:
        raise ValueError(f"rowwise_kl: shapes differ, target {tuple(target.shape)} vs {tuple(affinity.shape)}")
    log_affinity = torch.log(affinity.clamp_min(1e-12))
    return F.kl_div(log_affinity, target, reduction="batchmean")


@float32_loss
def affinity_distillation_loss(
    student_features: torch.Tensor, teacher_features: torch.Tensor, *, temperature: float = 0.1
) -> torch.Tensor:
    """LwF on retrieval features: ``KL(A_old || A_new)`` of the two models' batch affinities on the same inputs.

    ``teacher_features`` are treated as constants (detached).
    """
    if student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError(
            "affinity_distillation_loss: student and teacher batches differ "
            f"({student_features.shape[0]} vs {teacher_features.shape[0]})"
        )
    target = batch_affinity(teacher_features.detach(), temperature=temperature)
    return rowwise_kl(target, batch_affinity(student_features, temperature=temperature))


@float32_loss
def logit_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float = 2.0
) -> torch.Tensor:
    """The literal LwF term: ``KL(softmax(t/T) || softmax(s/T))`` with ``batchmean`` reduction.

    Like Avalanche's ``LearningWithoutForgetting`` and Li & Hoiem's modified cross-entropy, there is no ``T^2``
    rescaling. ``teacher_logits`` are detached.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "logit_distillation_loss: logits shapes differ, "
            f"student {tuple(student_logits.shape)} vs teacher {tuple(teacher_logits.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"logit_distillation_loss: temperature must be > 0, got {temperature}")
    log_p = torch.log_softmax(student_logits / temperature, dim=1)
    q = torch.softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean")
