"""`DKP`: Distribution-aware Knowledge Prototyping (Xu, Zhou et al., CVPR 2024): distribution prototypes of old
identities, prototype-affinity distillation, end-of-session model fusion (0.5 / 0.5); no exemplars.
See `plugins/dkp.py` for what was adapted to the ViT ReID model."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.plugins.dkp import DKPConfig, DKPPlugin
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["DKP"]


class DKP(ReIDTemplate):
    """`ReIDTemplate` + `WeightMergePlugin(lam=fusion_old_weight)` + `DKPPlugin` (in that order: prototypes are
    computed from the fused model)."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: DKPConfig = DKPConfig(),
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, DKPConfig):
            raise TypeError(f"method: expected a DKPConfig, got {type(method).__name__}")
        self.method = method
        self.merge = WeightMergePlugin(lam=method.fusion_old_weight)
        self.dkp = DKPPlugin(config=method)
        super().__init__(model=model, optimizer=optimizer, config=config, train_epochs=train_epochs,
                         eval_mb_size=eval_mb_size, device=device,
                         plugins=[self.merge, self.dkp, *(plugins or [])], evaluator=evaluator,
                         eval_every=eval_every)
