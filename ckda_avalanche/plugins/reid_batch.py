"""`ReIDBatchPlugin`: lets plain Avalanche strategies (e.g. `Naive`) drive a model that needs each sample's modality.

Avalanche's forward calls ``model(x)``; our model then reads ``model.batch_modality`` (docs/ARCHITECTURE.md,
"Model contract"). This plugin sets it from ``strategy.mbatch[3]`` before every forward and clears it afterwards.
"""
from __future__ import annotations

from typing import Any

from avalanche.core import SupervisedPlugin

from ckda_avalanche.plugins.checks import check_plain_strategy

__all__ = ["ReIDBatchPlugin"]


class ReIDBatchPlugin(SupervisedPlugin):
    """Sets ``strategy.model.batch_modality = strategy.mbatch[3]`` around each training and eval forward."""

    def __init__(self, *, modality_index: int = 3) -> None:
        super().__init__()
        self.modality_index = modality_index
        """Position of the modality in the minibatch (``(image, pid, camid, modality, task)``)."""

    def _set(self, strategy: Any) -> None:
        mbatch = strategy.mbatch
        if mbatch is None or len(mbatch) <= self.modality_index + 1:
            raise ValueError(
                f"ReIDBatchPlugin: expected minibatches (image, pid, camid, modality, task_label) with the modality at "
                f"index {self.modality_index} and the task label last, got {0 if mbatch is None else len(mbatch)} "
                "elements"
            )
        strategy.model.batch_modality = mbatch[self.modality_index]

    @staticmethod
    def _clear(strategy: Any) -> None:
        strategy.model.batch_modality = None

    def before_training(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        check_plain_strategy(strategy)

    def before_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._set(strategy)

    def after_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._clear(strategy)

    def before_eval_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._set(strategy)

    def after_eval_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._clear(strategy)
