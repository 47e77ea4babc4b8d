"""`PromptOrthogonalityPlugin`: optional penalty keeping P_spec and P_com apart (not in the published setting).

An option of the CKDA spec (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016, section 4): loss += weight *
mean cos(flatten(P_spec), flatten(P_com))^2. The model's ``prompt_components(x, modality)`` recomputes the two
prompts (cheap: the prompt generators are ~64k parameters); in training its dropout masks differ from those of the
main forward.
"""
from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.prompt import prompt_orthogonality
from ckda_avalanche.plugins.grad_share import record_loss_term

__all__ = ["PromptOrthogonalityPlugin"]


class PromptOrthogonalityPlugin(SupervisedPlugin):
    """Adds ``weight * prompt_orthogonality(P_spec, P_com)`` every training iteration (all sessions)."""

    def __init__(self, *, weight: float = 1.0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"PromptOrthogonalityPlugin.weight: expected >= 0, got {weight}")
        self.weight = weight
        """Weight of the penalty."""
        self.last_loss: torch.Tensor | None = None
        """Unweighted penalty of the last iteration (detached)."""

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if not callable(getattr(strategy.model, "prompt_components", None)):
            raise TypeError("PromptOrthogonalityPlugin needs a model with prompt_components(x, modality)")

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.last_loss = None
        if self.weight == 0:
            return
        specific, common = strategy.model.prompt_components(strategy.mb_x, strategy.mbatch[3])
        if specific is None or common is None:
            raise ValueError("PromptOrthogonalityPlugin: the model must have both MSP and MCP switched on")
        loss = prompt_orthogonality(specific, common)
        self.last_loss = loss.detach()
        strategy.loss = strategy.loss + self.weight * loss
        record_loss_term(strategy, "prompt_orthogonality", self.weight * loss)

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """The unweighted term of the last iteration (empty when it was not computed)."""
        return {} if self.last_loss is None else {"prompt_orthogonality": self.last_loss}
