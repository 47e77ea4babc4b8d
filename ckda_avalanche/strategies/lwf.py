"""`LwF`: Learning without Forgetting (Li & Hoiem, ECCV 2016) on the ViT ReID model; see `plugins/lwf.py` for what
was adapted to ReID (batch-affinity distillation by default, the literal logit form as an option)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.plugins.lwf import LwFConfig, ReIDLwFPlugin
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["LwF"]


class LwF(ReIDTemplate):
    """`ReIDTemplate` + `ReIDLwFPlugin`; same model, sampler, optimiser, base criterion as every other method."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: LwFConfig = LwFConfig(),
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, LwFConfig):
            raise TypeError(f"method: expected an LwFConfig, got {type(method).__name__}")
        self.method = method
        self.lwf = ReIDLwFPlugin(config=method)
        super().__init__(model=model, optimizer=optimizer, config=config, train_epochs=train_epochs,
                         eval_mb_size=eval_mb_size, device=device, plugins=[self.lwf, *(plugins or [])],
                         evaluator=evaluator, eval_every=eval_every)
