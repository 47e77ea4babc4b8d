"""`LSTKC` and its config `LSTKCConfig`: Long Short-Term Knowledge Consolidation (Xu, Zhou et al., AAAI 2024):
rectified affinity distillation from the previous model plus adaptive long-term model fusion after each session; see
`plugins/lstkc.py`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import BasePlugin

from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.plugins.lstkc import LSTKCPlugin, check_lstkc_settings
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["LSTKC", "LSTKCConfig"]


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
        check_lstkc_settings("LSTKCConfig", af_weight=self.af_weight, affinity_temperature=self.affinity_temperature,
                             fusion_temperature=self.fusion_temperature, fusion_max_images=self.fusion_max_images,
                             feature=self.feature)


class LSTKC(MethodStrategy[LSTKCConfig]):
    """`ReIDTemplate` + `LSTKCPlugin`; same backbone, sampler, optimiser, base criterion as every other method
    (the plain ViT ReID model unless the config's ``pixel_prompts``).

    Keywords: those of `MethodStrategy` (``method: LSTKCConfig = LSTKCConfig()``)."""

    default_method = LSTKCConfig()

    def make_method_plugins(self, method: LSTKCConfig) -> list[BasePlugin]:
        self.lstkc = LSTKCPlugin(af_weight=method.af_weight, affinity_temperature=method.affinity_temperature,
                                 fusion=method.fusion, fusion_temperature=method.fusion_temperature,
                                 fusion_max_images=method.fusion_max_images, feature=method.feature)
        return [self.lstkc]
