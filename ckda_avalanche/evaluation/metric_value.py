"""`ReIDMetricValue`: an Avalanche `MetricValue` carrying its tidy-CSV coordinates (the metric -> logger side channel).

The retrieval plugin metric (`evaluation.metrics`) emits these; `evaluation.tidy_logger.TidyCSVLogger` writes them
without parsing metric names. Other loggers treat them as ordinary `MetricValue`s (name, value, x_plot).
"""
from __future__ import annotations

from typing import Any

from avalanche.evaluation.metric_results import MetricValue

__all__ = ["ReIDMetricValue"]


class ReIDMetricValue(MetricValue):
    """A `MetricValue` that also carries its tidy-CSV coordinates (read by `TidyCSVLogger`)."""

    def __init__(
        self, origin: Any, name: str, value: float, x_plot: int, *,
        metric: str, eval_dataset: str, trial: str, train_exp: int, protocol: str,
    ) -> None:
        super().__init__(origin, name, value, x_plot)
        self.metric = metric
        """Tidy metric name: ``mAP``, ``Rank1``, ``mINP``, ``forgetting/mAP``, ``bwt/Rank1``, ..."""
        self.eval_dataset = eval_dataset
        """Dataset name, or ``"seen_avg"`` for stream-level values."""
        self.trial = trial
        """Trial name, ``"mean"`` for trial-averaged values, ``"-"`` for stream-level values."""
        self.train_exp = train_exp
        """Training sessions finished when this evaluation ran (0 before training)."""
        self.protocol = protocol
        """Protocol name of the evaluated experience(s)."""
