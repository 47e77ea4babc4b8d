"""`FineTune`: the lower bound of lifelong ReID: train every session with the base ReID loss, no protection.

Same sampler, optimiser, schedule and base criterion as CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016) on the
plain ViT ReID model (`FineTuneConfig.pixel_prompts` adds CKDA's pixel prompters); no teacher, no prototypes, no
weight merge. CKDA's own ablation "plain fine-tuning with the same backbone" (docs/method.md §8) is ``ckda[finetune]``,
which keeps the prompters.
"""
from __future__ import annotations

from dataclasses import dataclass

from avalanche.core import BasePlugin

from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["FineTune", "FineTuneConfig"]


@dataclass(frozen=True)
class FineTuneConfig(BackboneChoice):
    """Fine-tuning has no hyperparameter of its own; only the model choice of `BackboneChoice`."""


class FineTune(MethodStrategy[FineTuneConfig]):
    """`ReIDTemplate` with no method plugin: each session simply continues training the same model.

    Keywords: those of `MethodStrategy` (``method: FineTuneConfig = FineTuneConfig()``); user plugins (metrics,
    loggers) are passed through."""

    default_method = FineTuneConfig()

    def make_method_plugins(self, method: FineTuneConfig) -> list[BasePlugin]:
        """None: fine-tuning is the template alone."""
        return []
