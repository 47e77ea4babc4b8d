"""`LwF`: Learning without Forgetting (Li & Hoiem, ECCV 2016) on the ViT ReID model; see `plugins/lwf.py` for what
was adapted to ReID (batch-affinity distillation by default, the literal logit form as an option)."""
from __future__ import annotations

from avalanche.core import BasePlugin

from ckda_avalanche.plugins.lwf import LwFConfig, ReIDLwFPlugin
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["LwF"]


class LwF(MethodStrategy[LwFConfig]):
    """`ReIDTemplate` + `ReIDLwFPlugin`; same backbone, sampler, optimiser, base criterion as every other method
    (the plain ViT ReID model unless the config's ``pixel_prompts``).

    Keywords: those of `MethodStrategy` (``method: LwFConfig = LwFConfig()``)."""

    default_method = LwFConfig()

    def make_method_plugins(self, method: LwFConfig) -> list[BasePlugin]:
        self.lwf = ReIDLwFPlugin(config=method)
        return [self.lwf]
