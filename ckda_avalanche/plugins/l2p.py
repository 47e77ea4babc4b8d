"""`L2PPlugin`: the training side of the L2P prompt pool (Wang et al., "Learning to Prompt for Continual Learning",
CVPR 2022) on the ViT ReID model (`models/prompt_pool.py` holds the pool and the key matching).

* Before each session the backbone is frozen as configured: ``"head"`` (L2P: only the prompt pool, its keys, the
  BNNeck and the classifier learn), ``"last_block"`` (plus the last transformer block and the final LayerNorm) or
  ``"all"`` (nothing frozen). Freezing uses ``requires_grad_(False)`` (Avalanche re-adds every parameter to the
  optimiser each experience, so leaving parameters out of it would not stick).
* Every iteration the surrogate key-pull loss of the matched keys is added: ``loss += pull_weight * L_pull``.
"""
from __future__ import annotations

from typing import Any, Literal

from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.l2p import key_pull_loss
from ckda_avalanche.models.prompt_pool import PromptPoolReIDModel
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.settings import check_choice

__all__ = ["L2PPlugin", "apply_trainable", "check_l2p_settings"]


def check_l2p_settings(owner: str, *, pull_weight: float, trainable: str) -> None:
    """Raise a ValueError naming ``owner`` (the plugin or its method config) and the field of a bad setting."""
    check_choice(owner, "trainable", trainable, ("head", "last_block", "all"))
    if pull_weight < 0:
        raise ValueError(f"{owner}.pull_weight: expected >= 0, got {pull_weight}")


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

    def __init__(self, *, pull_weight: float = 0.1, trainable: Literal["head", "last_block", "all"] = "head") -> None:
        """The keywords are the fields of the same names of `L2PConfig` (``ckda_avalanche.strategies.l2p``), with
        its defaults; bad values raise a ValueError naming the keyword."""
        super().__init__()
        check_l2p_settings("L2PPlugin", pull_weight=pull_weight, trainable=trainable)
        self.pull_weight = pull_weight
        """lambda, weight of the key-pull surrogate loss."""
        self.trainable = trainable
        """What of the ViT ReID model learns besides the pool: ``"head"``, ``"last_block"`` or ``"all"``."""
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
        apply_trainable(self._pool_model(strategy), self.trainable)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model = self._pool_model(strategy)
        selection = model.pop_selection()
        if selection is None:
            raise RuntimeError("L2PPlugin: the training forward left no prompt selection")
        query, selected = selection
        pull = key_pull_loss(query, model.pool.keys, selected)
        self.last_pull = float(pull.detach())
        strategy.loss += self.pull_weight * pull
        record_loss_term(strategy, "l2p_key_pull", self.pull_weight * pull)

    def loss_terms(self) -> dict[str, float]:
        """The unweighted key-pull term of the last iteration."""
        return {"l2p_key_pull": self.last_pull}

