"""`L2P`: the L2P prompt pool (Wang et al., CVPR 2022) on the ViT ReID model: frozen (or partly frozen) backbone,
top-N key-matched prompts inserted as extra tokens, surrogate key-pull loss. See `models/prompt_pool.py` and
`plugins/l2p.py` for what was adapted to retrieval features."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.models.prompt_pool import PromptPoolReIDModel
from ckda_avalanche.plugins.l2p import L2PConfig, L2PPlugin, apply_trainable
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["L2P"]


class L2P(ReIDTemplate):
    """`ReIDTemplate` over `PromptPoolReIDModel(model)` + `L2PPlugin` (a given `ViTReID` is wrapped; a given
    `PromptPoolReIDModel` is used as is). The model must be created with ``method.model_overrides()`` (by default
    without CKDA's pixel prompts); the runner does this."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: L2PConfig = L2PConfig(),
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, L2PConfig):
            raise TypeError(f"method: expected an L2PConfig, got {type(method).__name__}")
        self.method = method
        base = model.base if isinstance(model, PromptPoolReIDModel) else model
        config_of_model = getattr(base, "config", None)
        wrong = {k: v for k, v in method.model_overrides().items()
                 if config_of_model is not None and getattr(config_of_model, k, v) != v}
        if wrong:
            raise ValueError(f"L2P: the model was not created for this L2PConfig (needs {wrong}); create it with "
                             "create_model(..., config_overrides=method.model_overrides())")
        if not isinstance(model, PromptPoolReIDModel):
            model = PromptPoolReIDModel(base=model, config=method.pool_config())
        apply_trainable(model, method.trainable)
        self.l2p = L2PPlugin(config=method)
        super().__init__(model=model, optimizer=optimizer, config=config, train_epochs=train_epochs,
                         eval_mb_size=eval_mb_size, device=device, plugins=[self.l2p, *(plugins or [])],
                         evaluator=evaluator, eval_every=eval_every)
