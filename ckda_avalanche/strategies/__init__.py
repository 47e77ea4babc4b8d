"""Strategies: `ReIDTemplate` (the shared Avalanche template), the methods built on it, and the method registry.

Each method is registered once (`registry.register_method`: its name, strategy, config dataclass and plot colour);
`STRATEGIES` (name -> strategy class) and `METHOD_CONFIGS` (name -> config dataclass, for methods that take one) are
read-only views of the registry, which also holds the methods that installed distributions add through the
``ckda_avalanche.methods`` entry-point group.
"""
from ckda_avalanche.strategies.base import ReIDTemplate, resolve_device, silent_evaluator
from ckda_avalanche.strategies.ckda import CKDA
from ckda_avalanche.strategies.ckda_config import ABLATION_FLAGS, CKDA_ABLATIONS, CKDA_PAPER, CKDAConfig
from ckda_avalanche.strategies.config import TrainConfig
from ckda_avalanche.strategies.dkp import DKP, DKPConfig
from ckda_avalanche.strategies.ewc import EWC, EWCConfig
from ckda_avalanche.strategies.finetune import FineTune, FineTuneConfig
from ckda_avalanche.strategies.joint import Joint, JointConfig
from ckda_avalanche.strategies.l2p import L2P, L2PConfig
from ckda_avalanche.strategies.lstkc import LSTKC, LSTKCConfig
from ckda_avalanche.strategies.lwf import LwF, LwFConfig
from ckda_avalanche.strategies.method_strategy import MethodStrategy
from ckda_avalanche.strategies.registry import (MethodRegistryError, MethodSpec, get_method, method_configs,
                                                 register_method, registered_methods, strategies)
from ckda_avalanche.strategies.replay import Replay, ReplayConfig

# The package's methods, in the order of `--methods all` and of the default board. Colours: fixed and distinct.
register_method("ckda", strategy=CKDA, config=CKDAConfig, colour="#d62728")
register_method("finetune", strategy=FineTune, config=FineTuneConfig, colour="#7f7f7f")
register_method("joint", strategy=Joint, config=JointConfig, colour="#000000", upper_bound=True)
register_method("lwf", strategy=LwF, config=LwFConfig, colour="#1f77b4")
register_method("ewc", strategy=EWC, config=EWCConfig, colour="#ff7f0e")
register_method("replay", strategy=Replay, config=ReplayConfig, colour="#2ca02c")
register_method("l2p", strategy=L2P, config=L2PConfig, colour="#637939")
register_method("lstkc", strategy=LSTKC, config=LSTKCConfig, colour="#756bb1")
register_method("dkp", strategy=DKP, config=DKPConfig, colour="#8c6d31")

STRATEGIES = strategies()
"""name -> strategy class of every registered method (a read-only view of the registry)."""
METHOD_CONFIGS = method_configs()
"""name -> config dataclass of every registered method that takes one (a read-only view of the registry)."""

__all__ = [
    "ABLATION_FLAGS", "CKDA", "CKDAConfig", "CKDA_ABLATIONS", "CKDA_PAPER", "DKP", "DKPConfig", "EWC", "EWCConfig",
    "FineTune", "FineTuneConfig", "Joint", "JointConfig", "L2P", "L2PConfig", "LSTKC", "LSTKCConfig", "LwF",
    "LwFConfig", "METHOD_CONFIGS", "MethodRegistryError", "MethodSpec", "MethodStrategy", "ReIDTemplate", "Replay",
    "ReplayConfig", "STRATEGIES", "TrainConfig", "get_method", "register_method", "registered_methods",
    "resolve_device", "silent_evaluator",
]
