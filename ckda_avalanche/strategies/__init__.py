"""Strategies: `ReIDTemplate` (the shared Avalanche template) and the methods built on it.

`STRATEGIES` maps a method name to its strategy class; `METHOD_CONFIGS` maps the names of methods that take a
method config (keyword ``method=``) to that config's dataclass. Baselines append theirs.
"""
from ckda_avalanche.strategies.base import ReIDTemplate, resolve_device, silent_evaluator
from ckda_avalanche.strategies.ckda import CKDA
from ckda_avalanche.strategies.ckda_config import ABLATION_FLAGS, CKDA_ABLATIONS, CKDA_PAPER, CKDAConfig
from ckda_avalanche.strategies.config import TrainConfig
from ckda_avalanche.strategies.finetune import FineTune, FineTuneConfig

STRATEGIES: dict[str, type] = {
    "ckda": CKDA,
    "finetune": FineTune,
}

METHOD_CONFIGS: dict[str, type] = {
    "ckda": CKDAConfig,
    "finetune": FineTuneConfig,
}

__all__ = [
    "ABLATION_FLAGS",
    "CKDA",
    "CKDAConfig",
    "CKDA_ABLATIONS",
    "CKDA_PAPER",
    "FineTune",
    "FineTuneConfig",
    "METHOD_CONFIGS",
    "ReIDTemplate",
    "STRATEGIES",
    "TrainConfig",
    "resolve_device",
    "silent_evaluator",
]

# Baselines (same backbone, streams, sampler, base criterion and metrics as CKDA, without CKDA's pixel prompters
# unless their config's `pixel_prompts` asks for them; see each module's docstring).
from ckda_avalanche.plugins.dkp import DKPConfig  # noqa: E402
from ckda_avalanche.plugins.ewc import EWCConfig  # noqa: E402
from ckda_avalanche.plugins.l2p import L2PConfig  # noqa: E402
from ckda_avalanche.plugins.lstkc import LSTKCConfig  # noqa: E402
from ckda_avalanche.plugins.lwf import LwFConfig  # noqa: E402
from ckda_avalanche.plugins.replay import ReplayConfig  # noqa: E402
from ckda_avalanche.strategies.dkp import DKP  # noqa: E402
from ckda_avalanche.strategies.ewc import EWC  # noqa: E402
from ckda_avalanche.strategies.joint import Joint, JointConfig  # noqa: E402
from ckda_avalanche.strategies.l2p import L2P  # noqa: E402
from ckda_avalanche.strategies.lstkc import LSTKC  # noqa: E402
from ckda_avalanche.strategies.lwf import LwF  # noqa: E402
from ckda_avalanche.strategies.replay import Replay  # noqa: E402

STRATEGIES.update({"joint": Joint, "lwf": LwF, "ewc": EWC, "replay": Replay, "l2p": L2P, "lstkc": LSTKC, "dkp": DKP})
METHOD_CONFIGS.update({"joint": JointConfig, "lwf": LwFConfig, "ewc": EWCConfig, "replay": ReplayConfig,
                       "l2p": L2PConfig, "lstkc": LSTKCConfig, "dkp": DKPConfig})
__all__ += ["DKP", "DKPConfig", "EWC", "EWCConfig", "Joint", "JointConfig", "L2P", "L2PConfig", "LSTKC",
            "LSTKCConfig", "LwF", "LwFConfig", "Replay", "ReplayConfig"]
