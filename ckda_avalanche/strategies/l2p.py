"""`L2P` and its config `L2PConfig`: the L2P prompt pool (Wang et al., CVPR 2022) on the ViT ReID model: frozen (or
partly frozen) backbone, top-N key-matched prompts inserted as extra tokens, surrogate key-pull loss. See
`models/prompt_pool.py` and `plugins/l2p.py` for what was adapted to retrieval features."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import BasePlugin
from torch import nn

from ckda_avalanche.models.backbone_choice import BackboneChoice, check_model_overrides
from ckda_avalanche.models.prompt_pool import PromptPoolConfig, PromptPoolReIDModel
from ckda_avalanche.plugins.l2p import L2PPlugin, apply_trainable, check_l2p_settings
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["L2P", "L2PConfig"]


@dataclass(frozen=True)
class L2PConfig(BackboneChoice):
    """Hyperparameters of L2P (defaults: the paper's setting, M = 10, L_p = 5, N = 5, lambda = 0.1).

    ``pixel_prompts`` (from `BackboneChoice`) keeps CKDA's pixel prompters, frozen with the backbone unless
    ``trainable='all'``; off by default, since L2P's only prompts are the pool's."""

    pool_size: int = 10
    """M, prompts in the pool."""
    prompt_length: int = 5
    """L_p, tokens per prompt."""
    top_n: int = 5
    """N, prompts selected per image."""
    init_range: float = 1.0
    """Uniform initialisation range of prompts and keys."""
    pull_weight: float = 0.1
    """lambda, weight of the key-pull surrogate loss."""
    trainable: Literal["head", "last_block", "all"] = "head"
    """What of the ViT ReID model learns besides the pool: head only (L2P), + last block, or everything."""

    def __post_init__(self) -> None:
        check_l2p_settings("L2PConfig", pull_weight=self.pull_weight, trainable=self.trainable)
        self.pool_config()  # validates the pool fields

    def pool_config(self) -> PromptPoolConfig:
        """The `PromptPoolConfig` part."""
        return PromptPoolConfig(pool_size=self.pool_size, prompt_length=self.prompt_length, top_n=self.top_n,
                                init_range=self.init_range)


class L2P(MethodStrategy[L2PConfig]):
    """`ReIDTemplate` over `PromptPoolReIDModel(model)` + `L2PPlugin` (a given `ViTReID` is wrapped; a given
    `PromptPoolReIDModel` is used as is). The model must be created with ``method.model_overrides()`` (by default
    without CKDA's pixel prompts); the runner does this.

    Keywords: those of `MethodStrategy` (``method: L2PConfig = L2PConfig()``)."""

    default_method = L2PConfig()

    def prepare_model(self, model: nn.Module, method: L2PConfig) -> nn.Module:
        """Check the model fits ``method.model_overrides()``, wrap it in the prompt pool, set what is trainable."""
        base = model.base if isinstance(model, PromptPoolReIDModel) else model
        check_model_overrides(base, method.model_overrides(), owner="L2P")
        if not isinstance(model, PromptPoolReIDModel):
            model = PromptPoolReIDModel(base=model, config=method.pool_config())
        apply_trainable(model, method.trainable)
        return model

    def make_method_plugins(self, method: L2PConfig) -> list[BasePlugin]:
        self.l2p = L2PPlugin(pull_weight=method.pull_weight, trainable=method.trainable)
        return [self.l2p]
