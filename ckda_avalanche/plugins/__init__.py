"""Avalanche plugins of ckda_avalanche: one method (or one method component) per file."""
from ckda_avalanche.plugins.cka import CKAPlugin
from ckda_avalanche.plugins.loss_terms import LossTermsPlugin
from ckda_avalanche.plugins.prompt_consistency import PromptConsistencyPlugin
from ckda_avalanche.plugins.prompt_orthogonality import PromptOrthogonalityPlugin
from ckda_avalanche.plugins.prototypes import DualPrototypes, compute_dual_prototypes
from ckda_avalanche.plugins.reid_batch import ReIDBatchPlugin
from ckda_avalanche.plugins.teacher import TeacherOutputs, TeacherPlugin
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin, merge_state_into

__all__ = [
    "LossTermsPlugin",
    "CKAPlugin",
    "DualPrototypes",
    "PromptConsistencyPlugin",
    "PromptOrthogonalityPlugin",
    "ReIDBatchPlugin",
    "TeacherOutputs",
    "TeacherPlugin",
    "WeightMergePlugin",
    "compute_dual_prototypes",
    "merge_state_into",
]

# Baselines' plugins (LwF, EWC, replay, L2P, LSTKC, DKP) and what they keep of the old model.
# Their hyperparameters are typed keywords (the fields of the same names of each method's config dataclass, which
# lives next to its strategy in ckda_avalanche.strategies).
from ckda_avalanche.plugins.dkp import DKPPlugin  # noqa: E402
from ckda_avalanche.plugins.ewc import ReIDEWCPlugin  # noqa: E402
from ckda_avalanche.plugins.l2p import L2PPlugin  # noqa: E402
from ckda_avalanche.plugins.lstkc import LSTKCPlugin  # noqa: E402
from ckda_avalanche.plugins.lwf import ReIDLwFPlugin  # noqa: E402
from ckda_avalanche.plugins.old_model import OldModelKeeper, extract_features  # noqa: E402
from ckda_avalanche.plugins.replay import ReIDReplayPlugin  # noqa: E402

__all__ += ["DKPPlugin", "L2PPlugin", "LSTKCPlugin", "OldModelKeeper", "ReIDEWCPlugin", "ReIDLwFPlugin",
            "ReIDReplayPlugin", "extract_features"]
