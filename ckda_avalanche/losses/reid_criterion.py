"""The base ReID loss of a session: L_base = L_id + L_tri + w_new ((1-c) L_cent + c L_cross).

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4, items 1-3). Every strategy of this package uses
it; method-specific terms (prompt consistency, CKA, ...) are added by plugins.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ckda_avalanche.losses.centre import centre_term, cross_modal_centre_terms
from ckda_avalanche.losses.numerics import float32_loss
from ckda_avalanche.losses.triplet import batch_hard_triplet
from ckda_avalanche.models.output import ReIDOutput

__all__ = ["ReIDLossConfig", "ReIDLossTerms", "ReIDCriterion"]


@dataclass(frozen=True)
class ReIDLossConfig:
    """Weights of the base ReID loss (published CKDA values by default)."""

    margin: float = 0.1
    """Margin of every batch-hard triplet (Euclidean distance on the pre-BN feature f)."""
    id_weight: float = 1.0
    """Weight of the identity loss (visible CE + infrared CE)."""
    triplet_weight: float = 1.0
    """Weight of the batch-hard triplet over all samples."""
    w_new: float = 1.0
    """Weight w_new of the cross-modal centre term (0 removes it)."""
    c: float = 0.5
    """Mix c between L_cent (1-c) and L_cross (c)."""

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"ReIDLossConfig.margin: expected >= 0, got {self.margin}")
        if not 0.0 <= self.c <= 1.0:
            raise ValueError(f"ReIDLossConfig.c: expected a value in [0, 1], got {self.c}")
        for name in ("id_weight", "triplet_weight", "w_new"):
            if getattr(self, name) < 0:
                raise ValueError(f"ReIDLossConfig.{name}: expected >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ReIDLossTerms:
    """Unweighted terms of the last training-mode call, detached 0-d tensors (no host sync), for logging and tests."""

    identity: torch.Tensor
    """Visible CE + infrared CE."""
    triplet: torch.Tensor
    """Batch-hard triplet over all samples."""
    cent: torch.Tensor
    """L_cent (centre vs centre)."""
    cross: torch.Tensor
    """L_cross (sample vs centre)."""
    total: torch.Tensor
    """Weighted sum returned by the call."""


class ReIDCriterion:
    """Callable criterion ``(output, targets) -> loss`` following the criterion contract of docs/ARCHITECTURE.md.

    ``output`` is a :class:`ReIDOutput` in training mode (``targets`` are session-local labels); in eval mode it is a
    plain feature tensor and the criterion returns a grad-free zero, because Avalanche also evaluates the criterion at
    eval time with identities the classifier does not know. The maths runs in float32 even inside an autocast
    region (`ckda_avalanche.losses.numerics.float32_loss`). A training-mode output without logits is an error while
    ``id_weight > 0`` (a model built without a classifier must not train silently without the identity loss).
    """

    def __init__(self, *, config: ReIDLossConfig = ReIDLossConfig()) -> None:
        self.config = config
        self.last_terms: ReIDLossTerms | None = None
        """Terms of the most recent training-mode call."""
        self.keep_weighted_terms: bool = False
        """When True, the next training-mode calls keep `weighted_terms` (set by a gradient probe for one step)."""
        self.weighted_terms: dict[str, torch.Tensor] | None = None
        """The weighted terms of the last call, with their graphs, when `keep_weighted_terms` was on: ``identity``,
        ``triplet``, ``cent`` (w_new (1 - c) L_cent), ``cross`` (w_new c L_cross); they sum to the returned loss."""

    @float32_loss
    def __call__(self, output: ReIDOutput | torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            return torch.zeros((), device=output.device)
        if not isinstance(output, ReIDOutput):
            raise TypeError(f"ReIDCriterion: expected a ReIDOutput or a tensor, got {type(output).__name__}")
        cfg = self.config
        feat, modality = output.feat, output.modality
        targets = targets.to(feat.device).long()
        zero = feat.sum() * 0.0
        identity = zero
        if output.logits is None and cfg.id_weight > 0:
            raise ValueError(
                f"ReIDCriterion: the model returned no identity logits (no classifier) but the identity loss has "
                f"weight {cfg.id_weight}; give the model a classifier (create_model(..., num_classes=N) or "
                "model.reset_classifier(N)), or use ReIDLossConfig(id_weight=0) to train without the identity loss")
        if output.logits is not None and cfg.id_weight > 0:
            logits = output.logits
            if int(targets.max()) >= logits.shape[1] or int(targets.min()) < 0:
                raise ValueError(
                    f"ReIDCriterion: targets span [{int(targets.min())}, {int(targets.max())}] but the classifier has "
                    f"{logits.shape[1]} classes; targets must be session-local labels (subtract label_offset)"
                )
            for code in (0, 1):
                group = modality == code
                if bool(group.any()):
                    identity = identity + F.cross_entropy(logits[group], targets[group])
        triplet = batch_hard_triplet(feat, targets, margin=cfg.margin)
        terms = cross_modal_centre_terms(feat, targets, modality, margin=cfg.margin)
        total = (
            cfg.id_weight * identity
            + cfg.triplet_weight * triplet
            + centre_term(terms, w_new=cfg.w_new, c=cfg.c)
        )
        if self.keep_weighted_terms:
            self.weighted_terms = {
                "identity": cfg.id_weight * identity, "triplet": cfg.triplet_weight * triplet,
                "cent": cfg.w_new * (1.0 - cfg.c) * terms.cent, "cross": cfg.w_new * cfg.c * terms.cross}
        self.last_terms = ReIDLossTerms(
            identity=identity.detach(),
            triplet=triplet.detach(),
            cent=terms.cent.detach(),
            cross=terms.cross.detach(),
            total=total.detach(),
        )
        return total
