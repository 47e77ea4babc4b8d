"""`EWC`: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) on ReID batches; see `plugins/ewc.py` for why
Avalanche's `EWCPlugin` could not be used as is."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.plugins.ewc import EWCConfig, ReIDEWCPlugin
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["EWC"]


class EWC(ReIDTemplate):
    """`ReIDTemplate` + `ReIDEWCPlugin`; same model, sampler, optimiser, base criterion as every other method."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: EWCConfig = EWCConfig(),
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, EWCConfig):
            raise TypeError(f"method: expected an EWCConfig, got {type(method).__name__}")
        self.method = method
        self.ewc = ReIDEWCPlugin(config=method)
        super().__init__(model=model, optimizer=optimizer, config=config, train_epochs=train_epochs,
                         eval_mb_size=eval_mb_size, device=device, plugins=[self.ewc, *(plugins or [])],
                         evaluator=evaluator, eval_every=eval_every)
