"""`PromptConsistencyPlugin`: CKDA's prompt consistency L_p against the previous session's frozen teacher.

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4.4): from the second session on,
loss += alpha * mean |P(x) - P~(x)|, where P~ is the prompt image of the shared `TeacherPlugin`'s frozen model.
"""
from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.prompt import prompt_consistency
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.teacher import TeacherPlugin

__all__ = ["PromptConsistencyPlugin", "require_teacher"]


def require_teacher(strategy: Any, teacher: TeacherPlugin, who: str) -> None:
    """Raise unless ``teacher`` is one of ``strategy``'s plugins and comes before the plugin named ``who``."""
    plugins = list(strategy.plugins)
    if not any(p is teacher for p in plugins):
        raise RuntimeError(f"{who}: its TeacherPlugin is not among the strategy's plugins; add it (after "
                           "WeightMergePlugin, before the plugins that use it)")
    mine = next((i for i, p in enumerate(plugins) if type(p).__name__ == who), None)
    theirs = next(i for i, p in enumerate(plugins) if p is teacher)
    if mine is not None and mine < theirs:
        raise RuntimeError(f"{who} comes before its TeacherPlugin in the plugin list; put TeacherPlugin first")


class PromptConsistencyPlugin(SupervisedPlugin):
    """Adds alpha * L_p in ``before_backward`` whenever a teacher exists and the model produces prompts."""

    def __init__(self, *, teacher: TeacherPlugin, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"PromptConsistencyPlugin.alpha: expected >= 0, got {alpha}")
        self.teacher = teacher
        """The shared frozen teacher."""
        self.alpha = alpha
        """Weight of L_p (0 disables it)."""
        self.last_loss: torch.Tensor | None = None
        """Unweighted L_p of the last training iteration (detached), None when it was not computed."""

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        require_teacher(strategy, self.teacher, type(self).__name__)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.last_loss = None
        if self.alpha == 0 or not self.teacher.active:
            return
        prompt = getattr(strategy.mb_output, "prompt", None)
        if prompt is None:
            return
        teacher_prompt = self.teacher.outputs(strategy).prompt
        if teacher_prompt is None:
            raise RuntimeError("PromptConsistencyPlugin: the student produces prompts but the teacher does not")
        loss = prompt_consistency(prompt, teacher_prompt)
        self.last_loss = loss.detach()
        strategy.loss = strategy.loss + self.alpha * loss
        record_loss_term(strategy, "prompt_consistency", self.alpha * loss)

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """The unweighted term of the last iteration (empty when it was not computed)."""
        return {} if self.last_loss is None else {"prompt_consistency": self.last_loss}
