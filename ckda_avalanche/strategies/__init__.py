"""Strategies: `ReIDTemplate` (the shared Avalanche template) and the methods built on it.

`STRATEGIES` maps a method name to its strategy class; `METHOD_CONFIGS` maps the names of methods that take a
method config (keyword ``method=``) to that config's dataclass. Baselines append theirs.
"""
from ckda_avalanche.strategies.base import ReIDTemplate, resolve_device, silent_evaluator
from ckda_avalanche.strategies.ckda import CKDA
from ckda_avalanche.strategies.ckda_config import ABLATION_FLAGS, CKDA_ABLATIONS, CKDA_PAPER, CKDAConfig
from ckda_avalanche.strategies.config import TrainConfig
from ckda_avalanche.strategies.finetune import FineTune

STRATEGIES: dict[str, type] = {
    "ckda": CKDA,
    "finetune": FineTune,
}

METHOD_CONFIGS: dict[str, type] = {
    "ckda": CKDAConfig,
}

__all__ = [
    "ABLATION_FLAGS",
    "CKDA",
    "CKDAConfig",
    "CKDA_ABLATIONS",
    "CKDA_PAPER",
    "FineTune",
    "METHOD_CONFIGS",
    "ReIDTemplate",
    "STRATEGIES",
    "TrainConfig",
    "resolve_device",
    "silent_evaluator",
]
