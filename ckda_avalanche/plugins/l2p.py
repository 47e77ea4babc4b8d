"""`L2PPlugin`: the training side of the L2P prompt pool (Wang et al., "Learning to Prompt for Continual Learning",
CVPR 2022) on the ViT ReID model (`models/prompt_pool.py` holds the pool and the key matching).

* Before each session the backbone is frozen as configured: ``"head"`` (L2P: only the prompt pool, its keys, the
  BNNeck and the classifier learn), ``"last_block"`` (plus the last transformer block and the final LayerNorm) or
  ``"all"`` (nothing frozen). Freezing uses ``requires_grad_(False)`` (Avalanche re-adds every parameter to the
  optimiser each experience, so leaving parameters out of it would not stick).
* Every iteration the surrogate key-pull loss of the matched keys is added: ``loss += pull_weight * L_pull``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.l2p import key_pull_loss
from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.models.prompt_pool import PromptPoolConfig, PromptPoolReIDModel
from ckda_avalanche.plugins.grad_share import record_loss_term

__all__ = ["L2PConfig", "L2PPlugin", "apply_trainable"]


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
        if self.trainable not in ("head", "last_block", "all"):
            raise ValueError(f"L2PConfig.trainable: expected 'head', 'last_block' or 'all', got {self.trainable!r}")
        if self.pull_weight < 0:
            raise ValueError(f"L2PConfig.pull_weight: expected >= 0, got {self.pull_weight}")
        self.pool_config()  # validates the pool fields

    def pool_config(self) -> PromptPoolConfig:
        """The `PromptPoolConfig` part."""
        return PromptPoolConfig(pool_size=self.pool_size, prompt_length=self.prompt_length, top_n=self.top_n,
                                init_range=self.init_range)


def apply_trainable(model: PromptPoolReIDModel, trainable: str) -> None:
    """Set ``requires_grad`` of the wrapped model per ``trainable`` (the pool and the head always learn)."""
    base = model.base
    if trainable == "all":
        base.requires_grad_(True)
    else:
        base.requires_grad_(False)
        base.head.requires_grad_(True)
        base.head.bnneck.bias.requires_grad_(False)  # BNNeck bias stays frozen at 0 (model contract)
        if trainable == "last_block":
            base.backbone.blocks[-1].requires_grad_(True)
            base.backbone.norm.requires_grad_(True)
    model.pool.requires_grad_(True)


class L2PPlugin(SupervisedPlugin):
    """Freezes the backbone as configured and adds the key-pull loss."""

    def __init__(self, *, config: L2PConfig = L2PConfig()) -> None:
        super().__init__()
        self.config = config
        self.last_pull: float = 0.0
        """Key-pull loss at the latest iteration."""

    @staticmethod
    def _pool_model(strategy: Any) -> PromptPoolReIDModel:
        model = strategy.model
        if not isinstance(model, PromptPoolReIDModel):
            raise TypeError(f"L2PPlugin needs a PromptPoolReIDModel, got {type(model).__name__} (use the L2P strategy)")
        return model

    def before_train_dataset_adaptation(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        # runs before the session's optimiser is built
        apply_trainable(self._pool_model(strategy), self.config.trainable)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model = self._pool_model(strategy)
        selection = model.pop_selection()
        if selection is None:
            raise RuntimeError("L2PPlugin: the training forward left no prompt selection")
        query, selected = selection
        pull = key_pull_loss(query, model.pool.keys, selected)
        self.last_pull = float(pull.detach())
        strategy.loss += self.config.pull_weight * pull
        record_loss_term(strategy, "l2p_key_pull", self.config.pull_weight * pull)

    def loss_terms(self) -> dict[str, float]:
        """The unweighted key-pull term of the last iteration."""
        return {"l2p_key_pull": self.last_pull}

