"""`LSTKC`: Long Short-Term Knowledge Consolidation (Xu, Zhou et al., AAAI 2024): rectified affinity distillation
from the previous model plus adaptive long-term model fusion after each session; see `plugins/lstkc.py`."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.plugins.lstkc import LSTKCConfig, LSTKCPlugin
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["LSTKC"]


class LSTKC(ReIDTemplate):
    """`ReIDTemplate` + `LSTKCPlugin`; same model, sampler, optimiser, base criterion as every other method."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: LSTKCConfig = LSTKCConfig(),
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, LSTKCConfig):
            raise TypeError(f"method: expected an LSTKCConfig, got {type(method).__name__}")
        self.method = method
        self.lstkc = LSTKCPlugin(config=method)
        super().__init__(model=model, optimizer=optimizer, config=config, train_epochs=train_epochs,
                         eval_mb_size=eval_mb_size, device=device, plugins=[self.lstkc, *(plugins or [])],
                         evaluator=evaluator, eval_every=eval_every)
