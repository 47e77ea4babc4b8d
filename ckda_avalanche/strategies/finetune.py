"""`FineTune`: the lower bound of lifelong ReID: train every session with the base ReID loss, no protection.

Same model, sampler, optimiser and schedule as CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016, "plain
fine-tuning with the same backbone", spec section 8); no teacher, no prototypes, no weight merge.
"""
from __future__ import annotations

from ckda_avalanche.strategies.base import ReIDTemplate

__all__ = ["FineTune"]


class FineTune(ReIDTemplate):
    """`ReIDTemplate` with no method plugin: each session simply continues training the same model.

    Takes exactly `ReIDTemplate`'s keyword arguments; user plugins (metrics, loggers) are passed through.
    """
