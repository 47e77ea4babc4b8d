"""Avalanche plugins of ckda_avalanche: one method (or one method component) per file."""
from ckda_avalanche.plugins.cka import CKAPlugin
from ckda_avalanche.plugins.prompt_consistency import PromptConsistencyPlugin
from ckda_avalanche.plugins.prompt_orthogonality import PromptOrthogonalityPlugin
from ckda_avalanche.plugins.prototypes import DualPrototypes, compute_dual_prototypes
from ckda_avalanche.plugins.reid_batch import ReIDBatchPlugin
from ckda_avalanche.plugins.teacher import TeacherOutputs, TeacherPlugin
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin, merge_state_into

__all__ = [
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
