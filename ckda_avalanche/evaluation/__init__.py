"""Evaluation: ranking (mAP/CMC/mINP), cosine distance, Avalanche retrieval metrics, forgetting/BWT, tidy CSV logger.

Names are loaded lazily (PEP 562) so that importing one submodule, e.g. ``evaluation.ranking``, does not import
Avalanche's logging stack; ``from ckda_avalanche.evaluation import reid_metrics`` works as usual.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # ranking.py / distance.py: exact CMC, mAP and mINP from distances or features
    "evaluate_rank": "ranking",
    "evaluate_features": "ranking",
    # metrics.py: Avalanche plugin metrics
    "reid_metrics": "metrics",
    "ReIDRetrievalPluginMetric": "metrics",
    "ReIDMetricValue": "metric_value",
    "FORGETTING_METRICS": "metrics",
    # feature_pool.py: standalone retrieval metric
    "ReIDRetrieval": "feature_pool",
    "evaluate_protocol": "feature_pool",
    "ExperienceScores": "feature_pool",
    "TrialScores": "feature_pool",
    "metric_keys": "feature_pool",
    "pool_features": "feature_pool",
    # modality_gap.py: how far infrared features sit from the same person's visible ones
    "modality_gap": "modality_gap",
    "MODALITY_GAP_METRICS": "modality_gap",
    # forgetting.py: pure functions on R[train_exp, eval_dataset]
    "seen_average": "forgetting",
    "forgetting_per_dataset": "forgetting",
    "average_forgetting": "forgetting",
    "backward_transfer": "forgetting",
    # tidy_logger.py
    "TIDY_COLUMNS": "tidy_logger",
    "TidyCSVLogger": "tidy_logger",
    "tidy_rows_from_csv": "tidy_logger",
    "truncate_after_train_exp": "tidy_logger",
    "append_extra_rows": "tidy_logger",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
