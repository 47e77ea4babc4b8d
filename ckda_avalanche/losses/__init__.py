"""Losses of CKDA (arXiv 2511.15016) as pure functions; plugins and criteria only call them."""
from ckda_avalanche.losses.affinity import (
    AffinityTerms,
    affinity_kl,
    affinity_matrix,
    cka_loss,
    cka_terms,
    prototype_distribution,
)
from ckda_avalanche.losses.centre import CentreTerms, centre_term, cross_modal_centre_terms, modality_centres
from ckda_avalanche.losses.l2p import key_pull_loss
from ckda_avalanche.losses.prompt import prompt_consistency, prompt_orthogonality
from ckda_avalanche.losses.numerics import float32_loss
from ckda_avalanche.losses.reid_criterion import ReIDCriterion, ReIDLossConfig, ReIDLossTerms
from ckda_avalanche.losses.triplet import batch_hard_triplet, cross_batch_hard_triplet, euclidean_distances

__all__ = [
    "AffinityTerms",
    "CentreTerms",
    "ReIDCriterion",
    "ReIDLossConfig",
    "ReIDLossTerms",
    "affinity_kl",
    "affinity_matrix",
    "batch_hard_triplet",
    "centre_term",
    "cka_loss",
    "cka_terms",
    "cross_batch_hard_triplet",
    "cross_modal_centre_terms",
    "euclidean_distances",
    "float32_loss",
    "key_pull_loss",
    "modality_centres",
    "prompt_consistency",
    "prompt_orthogonality",
    "prototype_distribution",
]
