"""`LwF` and its config `LwFConfig`: Learning without Forgetting (Li & Hoiem, ECCV 2016) on the ViT ReID model; see
`plugins/lwf.py` for what was adapted to ReID (batch-affinity distillation by default, the literal logit form as an
option)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import BasePlugin

from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.plugins.lwf import ReIDLwFPlugin, check_lwf_settings
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["LwF", "LwFConfig"]


@dataclass(frozen=True)
class LwFConfig(BackboneChoice):
    """Hyperparameters of LwF for ReID."""

    alpha: float = 1.0
    """Weight of the distillation term (Li & Hoiem's lambda_o = 1)."""
    mode: Literal["affinity", "logits"] = "affinity"
    """What is distilled: batch affinity of features, or the old session's identity logits (literal LwF)."""
    affinity_temperature: float = 0.1
    """Softmax temperature of the batch affinity (as LSTKC/DKP)."""
    logit_temperature: float = 2.0
    """Knowledge-distillation temperature of the logits mode (Li & Hoiem: T = 2)."""
    feature: Literal["feat", "bn_feat"] = "feat"
    """Feature whose affinity is distilled: pre-BN f (default) or the BNNeck output g (old model: running stats)."""

    def __post_init__(self) -> None:
        check_lwf_settings("LwFConfig", alpha=self.alpha, mode=self.mode,
                           affinity_temperature=self.affinity_temperature, logit_temperature=self.logit_temperature,
                           feature=self.feature)


class LwF(MethodStrategy[LwFConfig]):
    """`ReIDTemplate` + `ReIDLwFPlugin`; same backbone, sampler, optimiser, base criterion as every other method
    (the plain ViT ReID model unless the config's ``pixel_prompts``).

    Keywords: those of `MethodStrategy` (``method: LwFConfig = LwFConfig()``)."""

    default_method = LwFConfig()

    def make_method_plugins(self, method: LwFConfig) -> list[BasePlugin]:
        self.lwf = ReIDLwFPlugin(alpha=method.alpha, mode=method.mode,
                                 affinity_temperature=method.affinity_temperature,
                                 logit_temperature=method.logit_temperature, feature=method.feature)
        return [self.lwf]
