"""`Replay`: bounded exemplar replay (images per old identity and modality) with the usual ReID losses on replayed
samples; the classifier covers every identity seen so far. See `plugins/replay.py` for memory and selection."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.plugins.replay import ReIDReplayPlugin, ReplayConfig
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["Replay", "seen_label_range"]


def seen_label_range(strategy: ReIDTemplate) -> tuple[int, int]:
    """(first label, number of labels) spanned by the training experiences up to the current one (inclusive).

    Sessions use disjoint label ranges ``[offset_s, offset_s + n_s)`` (docs/ARCHITECTURE.md); the span must have no
    gap, otherwise a ValueError names the offsets.
    """
    experience = strategy.experience
    current = int(experience.current_experience)
    infos = [strategy.session_info(experience.origin_stream[i]) for i in range(current + 1)]
    ranges = sorted((int(i.label_offset), int(i.label_offset) + int(i.num_identities)) for i in infos)
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        if start != end:
            raise ValueError(f"seen_label_range: session label ranges are not contiguous: {ranges}")
    return ranges[0][0], ranges[-1][1] - ranges[0][0]


class Replay(ReIDTemplate):
    """`ReIDTemplate` + `ReIDReplayPlugin`; in training the classifier spans all identities seen so far and the
    criterion gets labels relative to the first session's offset, so replayed identities keep their labels."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: ReplayConfig = ReplayConfig(),
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, ReplayConfig):
            raise TypeError(f"method: expected a ReplayConfig, got {type(method).__name__}")
        self.method = method
        self.replay = ReIDReplayPlugin(config=method)
        super().__init__(model=model, optimizer=optimizer, config=config, train_epochs=train_epochs,
                         eval_mb_size=eval_mb_size, device=device, plugins=[self.replay, *(plugins or [])],
                         evaluator=evaluator, eval_every=eval_every)

    def model_adaptation(self, model: nn.Module | None = None) -> nn.Module:
        """As `ReIDTemplate`, but in training the classifier covers every identity seen so far."""
        model = super().model_adaptation(model)
        if self.is_training:
            self.label_offset, count = seen_label_range(self)
            model.reset_classifier(count)
            model.to(self.device)
        return model
