"""`L2P`: the L2P prompt pool (Wang et al., CVPR 2022) on the ViT ReID model: frozen (or partly frozen) backbone,
top-N key-matched prompts inserted as extra tokens, surrogate key-pull loss. See `models/prompt_pool.py` and
`plugins/l2p.py` for what was adapted to retrieval features."""
from __future__ import annotations

from avalanche.core import BasePlugin
from torch import nn

from ckda_avalanche.models.backbone_choice import check_model_overrides
from ckda_avalanche.models.prompt_pool import PromptPoolReIDModel
from ckda_avalanche.plugins.l2p import L2PConfig, L2PPlugin, apply_trainable
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["L2P"]


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
        self.l2p = L2PPlugin(config=method)
        return [self.l2p]
