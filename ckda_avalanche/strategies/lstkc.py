"""`LSTKC`: Long Short-Term Knowledge Consolidation (Xu, Zhou et al., AAAI 2024): rectified affinity distillation
from the previous model plus adaptive long-term model fusion after each session; see `plugins/lstkc.py`."""
from __future__ import annotations

from avalanche.core import BasePlugin

from ckda_avalanche.plugins.lstkc import LSTKCConfig, LSTKCPlugin
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["LSTKC"]


class LSTKC(MethodStrategy[LSTKCConfig]):
    """`ReIDTemplate` + `LSTKCPlugin`; same backbone, sampler, optimiser, base criterion as every other method
    (the plain ViT ReID model unless the config's ``pixel_prompts``).

    Keywords: those of `MethodStrategy` (``method: LSTKCConfig = LSTKCConfig()``)."""

    default_method = LSTKCConfig()

    def make_method_plugins(self, method: LSTKCConfig) -> list[BasePlugin]:
        self.lstkc = LSTKCPlugin(config=method)
        return [self.lstkc]
