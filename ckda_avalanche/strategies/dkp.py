"""`DKP` and its config `DKPConfig`: Distribution-aware Knowledge Prototyping (Xu, Zhou et al., CVPR 2024):
distribution prototypes of old identities, prototype-affinity distillation, end-of-session model fusion (0.5 / 0.5);
no exemplars. See `plugins/dkp.py` for what was adapted to the ViT ReID model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import BasePlugin

from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.plugins.dkp import DKPPlugin, check_dkp_settings
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["DKP", "DKPConfig"]


@dataclass(frozen=True)
class DKPConfig(BackboneChoice):
    """Hyperparameters of DKP (defaults: the authors' published setting)."""

    af_weight: float = 0.1
    """Weight of the prototype affinity distillation (AF_weight = 0.1)."""
    lambda_1: float = 0.1
    """Temperature of the sample-to-prototype relation."""
    lambda_2: float = 0.1
    """Temperature of both batch affinities."""
    fusion_old_weight: float = 0.5
    """Weight of the previous model in the end-of-session fusion (DKP: 0.5; 0 disables fusion)."""
    per_modality: bool = False
    """Separate visible / infrared distributions per identity (False: one per identity, as DKP)."""
    accumulate_sessions: bool = False
    """Distil against the prototypes of all past sessions (False: only the previous session's, as DKP)."""
    feature: Literal["feat", "retrieval"] = "feat"
    """Feature space of prototypes and student: L2-normalised pre-BN f, or the retrieval feature L2norm(BN(f))."""

    def __post_init__(self) -> None:
        check_dkp_settings("DKPConfig", af_weight=self.af_weight, lambda_1=self.lambda_1, lambda_2=self.lambda_2,
                           feature=self.feature)
        if not 0.0 <= self.fusion_old_weight < 1.0:
            raise ValueError(f"DKPConfig.fusion_old_weight: expected [0, 1), got {self.fusion_old_weight}")


class DKP(MethodStrategy[DKPConfig]):
    """`ReIDTemplate` + `WeightMergePlugin(lam=fusion_old_weight)` + `DKPPlugin` (in that order: prototypes are
    computed from the fused model).

    Keywords: those of `MethodStrategy` (``method: DKPConfig = DKPConfig()``)."""

    default_method = DKPConfig()

    def make_method_plugins(self, method: DKPConfig) -> list[BasePlugin]:
        self.merge = WeightMergePlugin(lam=method.fusion_old_weight)
        self.dkp = DKPPlugin(af_weight=method.af_weight, lambda_1=method.lambda_1, lambda_2=method.lambda_2,
                             per_modality=method.per_modality, accumulate_sessions=method.accumulate_sessions,
                             feature=method.feature)
        return [self.merge, self.dkp]
