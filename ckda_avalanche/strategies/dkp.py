"""`DKP`: Distribution-aware Knowledge Prototyping (Xu, Zhou et al., CVPR 2024): distribution prototypes of old
identities, prototype-affinity distillation, end-of-session model fusion (0.5 / 0.5); no exemplars.
See `plugins/dkp.py` for what was adapted to the ViT ReID model."""
from __future__ import annotations

from avalanche.core import BasePlugin

from ckda_avalanche.plugins.dkp import DKPConfig, DKPPlugin
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["DKP"]


class DKP(MethodStrategy[DKPConfig]):
    """`ReIDTemplate` + `WeightMergePlugin(lam=fusion_old_weight)` + `DKPPlugin` (in that order: prototypes are
    computed from the fused model).

    Keywords: those of `MethodStrategy` (``method: DKPConfig = DKPConfig()``)."""

    default_method = DKPConfig()

    def make_method_plugins(self, method: DKPConfig) -> list[BasePlugin]:
        self.merge = WeightMergePlugin(lam=method.fusion_old_weight)
        self.dkp = DKPPlugin(config=method)
        return [self.merge, self.dkp]
