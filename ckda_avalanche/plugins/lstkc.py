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

from typing import Any, Literal

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ckda_avalanche.losses.lstkc import affinity_discrepancy_fusion_weight, rectified_affinity_distillation_loss
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.old_model import OldModelKeeper, extract_features, loader_workers
from ckda_avalanche.plugins.settings import check_choice
from ckda_avalanche.plugins.weight_merge import merge_state_into

__all__ = ["LSTKCPlugin", "check_lstkc_settings"]


def check_lstkc_settings(owner: str, *, af_weight: float, affinity_temperature: float, fusion_temperature: float,
                         fusion_max_images: int, feature: str) -> None:
    """Raise a ValueError naming ``owner`` (the plugin or its method config) and the field of a bad setting."""
    check_choice(owner, "feature", feature, ("feat", "bn_feat"))
    if af_weight < 0 or fusion_max_images < 0:
        raise ValueError(f"{owner}: af_weight and fusion_max_images must be >= 0")
    if affinity_temperature <= 0 or fusion_temperature <= 0:
        raise ValueError(f"{owner}: temperatures must be > 0")


class LSTKCPlugin(SupervisedPlugin):
    """Rectified affinity distillation in training; adaptive weight fusion after each session."""

    def __init__(self, *, af_weight: float = 1.0, affinity_temperature: float = 0.1, fusion: bool = True,
                 fusion_temperature: float = 0.01, fusion_max_images: int = 0,
                 feature: Literal["feat", "bn_feat"] = "feat") -> None:
        """The keywords are the fields of the same names of `LSTKCConfig` (``ckda_avalanche.strategies.lstkc``),
        with its defaults; bad values raise a ValueError naming the keyword."""
        super().__init__()
        check_lstkc_settings("LSTKCPlugin", af_weight=af_weight, affinity_temperature=affinity_temperature,
                             fusion_temperature=fusion_temperature, fusion_max_images=fusion_max_images,
                             feature=feature)
        self.af_weight = af_weight
        """Weight of the rectified affinity distillation."""
        self.affinity_temperature = affinity_temperature
        """Temperature of the training batch affinity."""
        self.fusion = fusion
        """Long-term fusion of old and new weights at the end of each session."""
        self.fusion_temperature = fusion_temperature
        """Temperature of the affinities that set the fusion weight."""
        self.fusion_max_images = fusion_max_images
        """Training images used for the fusion weight (0: all)."""
        self.feature = feature
        """Feature distilled in training: ``"feat"`` (pre-BN f) or ``"bn_feat"`` (BNNeck output g)."""
        self.old = OldModelKeeper()
        """The previous session's (fused) model, frozen."""
        self.fusion_weights: list[float] = []
        """alpha (weight of the new model) used at the end of each session from the second on."""
        self.last_term: float = 0.0
        """Value of the distillation term at the latest iteration."""

    def bind_template(self, model: nn.Module) -> None:
        """The strategy's model: the old model is saved as "same as the model" while it equals it."""
        self.old.bind_template(model)

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.old.ensure(strategy.model)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        old = self.old.model
        if old is None or self.af_weight == 0:
            return
        out = strategy.mb_output
        with torch.no_grad():
            old_feat, _ = old.forward_features(strategy.mb_x, strategy.mbatch[3])
            if self.feature == "bn_feat":
                old_feat, _ = old.forward_head(old_feat)
        student = out.feat if self.feature == "feat" else out.bn_feat
        term = rectified_affinity_distillation_loss(student, old_feat, strategy.mb_y,
                                                    temperature=self.affinity_temperature)
        self.last_term = float(term.detach())
        strategy.loss += self.af_weight * term
        record_loss_term(strategy, "lstkc_affinity", self.af_weight * term)

    def loss_terms(self) -> dict[str, float]:
        """The unweighted term of the last iteration."""
        return {} if self.old.model is None or self.af_weight == 0 else {"lstkc_affinity": self.last_term}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        old = self.old.model
        if old is not None and self.fusion:
            dataset = strategy.experience.dataset
            common = dict(batch_size=strategy.eval_mb_size, device=strategy.device,
                          max_images=self.fusion_max_images, seed=strategy.session_index,
                          num_workers=loader_workers(strategy))
            new_feats, _, _ = extract_features(strategy.model, dataset, **common)
            old_feats, _, _ = extract_features(old, dataset, **common)
            alpha = affinity_discrepancy_fusion_weight(new_feats, old_feats,
                                                       temperature=self.fusion_temperature)
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
