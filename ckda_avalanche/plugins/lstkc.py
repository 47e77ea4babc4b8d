"""`LSTKCPlugin`: Long Short-Term Knowledge Consolidation (Xu, Zhou et al., AAAI 2024) for lifelong VI-ReID.

* Short term, every iteration from the second session on: the previous (fused) model's batch affinity is rectified
  with the batch's identity labels and distilled into the current model, ``af_weight * KL(rectify(A_old) || A_new)``
  (`losses/lstkc.py`), on the pre-BN feature f of both models (as LSTKC's global feature).
* Long term, at the end of every session from the second on: the trained weights are fused with the previous
  model's, ``theta = alpha * theta_new + (1 - alpha) * theta_old``, with ``alpha`` from the discrepancy of the two
  models' affinities over the session's training images (eval mode, test transforms); then the fused model becomes the
  next session's old model. The classifier (re-created each session) is not fused.

Adapted for VI-ReID: the batches are the cross-modality P x K x 2 batches, so the rectified affinity spans both
modalities (a visible and an infrared image of one identity are positives); LSTKC's classifier expansion
(old identities kept in one growing classifier) is replaced by our per-session classifier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.lstkc import affinity_discrepancy_fusion_weight, rectified_affinity_distillation_loss
from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.old_model import OldModelKeeper, extract_features, loader_workers
from ckda_avalanche.plugins.weight_merge import merge_state_into

__all__ = ["LSTKCConfig", "LSTKCPlugin"]


@dataclass(frozen=True)
class LSTKCConfig(BackboneChoice):
    """Hyperparameters of LSTKC (defaults: the authors' published setting)."""

    af_weight: float = 1.0
    """Weight of the rectified affinity distillation ("anti-forgetting weight", AF_weight = 1)."""
    affinity_temperature: float = 0.1
    """Temperature of the training batch affinity (0.1)."""
    fusion: bool = True
    """Long-term fusion of old and new weights at the end of each session."""
    fusion_temperature: float = 0.01
    """Temperature of the affinities that set the fusion weight (0.01, i.e. cosine x 100)."""
    fusion_max_images: int = 0
    """Training images used for the fusion weight (0: all; otherwise a seeded random subset)."""
    feature: Literal["feat", "bn_feat"] = "feat"
    """Feature distilled in training: pre-BN f (default) or the BNNeck output g."""

    def __post_init__(self) -> None:
        if self.feature not in ("feat", "bn_feat"):
            raise ValueError(f"LSTKCConfig.feature: expected 'feat' or 'bn_feat', got {self.feature!r}")
        if self.af_weight < 0 or self.fusion_max_images < 0:
            raise ValueError("LSTKCConfig: af_weight and fusion_max_images must be >= 0")
        if self.affinity_temperature <= 0 or self.fusion_temperature <= 0:
            raise ValueError("LSTKCConfig: temperatures must be > 0")


class LSTKCPlugin(SupervisedPlugin):
    """Rectified affinity distillation in training; adaptive weight fusion after each session."""

    def __init__(self, *, config: LSTKCConfig = LSTKCConfig()) -> None:
        super().__init__()
        self.config = config
        self.old = OldModelKeeper()
        """The previous session's (fused) model, frozen."""
        self.fusion_weights: list[float] = []
        """alpha (weight of the new model) used at the end of each session from the second on."""
        self.last_term: float = 0.0
        """Value of the distillation term at the latest iteration."""

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.old.ensure(strategy.model)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        old = self.old.model
        if old is None or self.config.af_weight == 0:
            return
        out = strategy.mb_output
        with torch.no_grad():
            old_feat, _ = old.forward_features(strategy.mb_x, strategy.mbatch[3])
            if self.config.feature == "bn_feat":
                old_feat, _ = old.forward_head(old_feat)
        student = out.feat if self.config.feature == "feat" else out.bn_feat
        term = rectified_affinity_distillation_loss(student, old_feat, strategy.mb_y,
                                                    temperature=self.config.affinity_temperature)
        self.last_term = float(term.detach())
        strategy.loss += self.config.af_weight * term
        record_loss_term(strategy, "lstkc_affinity", self.config.af_weight * term)

    def loss_terms(self) -> dict[str, float]:
        """The unweighted term of the last iteration."""
        return {} if self.old.model is None or self.config.af_weight == 0 else {"lstkc_affinity": self.last_term}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        old = self.old.model
        if old is not None and self.config.fusion:
            dataset = strategy.experience.dataset
            common = dict(batch_size=strategy.eval_mb_size, device=strategy.device,
                          max_images=self.config.fusion_max_images, seed=strategy.session_index,
                          num_workers=loader_workers(strategy))
            new_feats, _, _ = extract_features(strategy.model, dataset, **common)
            old_feats, _, _ = extract_features(old, dataset, **common)
            alpha = affinity_discrepancy_fusion_weight(new_feats, old_feats,
                                                       temperature=self.config.fusion_temperature)
            merge_state_into(strategy.model, old.state_dict(), lam=1.0 - alpha)
            self.fusion_weights.append(alpha)
        self.old.snapshot(strategy.model)

    def state_dict(self) -> dict[str, Any]:
        return {"old_model": self.old.state_dict(), "fusion_weights": list(self.fusion_weights)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("old_model", "fusion_weights"):
            if key not in state:
                raise KeyError(f"LSTKCPlugin.load_state_dict: missing entry {key!r}")
        self.old.load_state_dict(state["old_model"])
        self.fusion_weights = [float(v) for v in state["fusion_weights"]]

    def memory_report(self) -> dict[str, int]:
        return {"parameters": self.old.num_bytes()}
