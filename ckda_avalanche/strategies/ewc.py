"""`EWC`: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) on ReID batches; see `plugins/ewc.py` for why
Avalanche's `EWCPlugin` could not be used as is."""
from __future__ import annotations

from avalanche.core import BasePlugin

from ckda_avalanche.plugins.ewc import EWCConfig, ReIDEWCPlugin
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["EWC"]


class EWC(MethodStrategy[EWCConfig]):
    """`ReIDTemplate` + `ReIDEWCPlugin`; same backbone, sampler, optimiser, base criterion as every other method
    (the plain ViT ReID model unless the config's ``pixel_prompts``).

    Keywords: those of `MethodStrategy` (``method: EWCConfig = EWCConfig()``)."""

    default_method = EWCConfig()

    def make_method_plugins(self, method: EWCConfig) -> list[BasePlugin]:
        self.ewc = ReIDEWCPlugin(config=method)
        return [self.ewc]
