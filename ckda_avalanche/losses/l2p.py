"""L2P's key-pull surrogate loss (Wang et al., "Learning to Prompt for Continual Learning", CVPR 2022).

The N prompts selected for a sample have their keys pulled towards the sample's query:
``L_pull = mean_b sum_{k in top-N(b)} (1 - cos(q_b, key_k))``. The query carries no gradient; the keys do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ckda_avalanche.losses.numerics import float32_loss

__all__ = ["key_pull_loss"]


@float32_loss
def key_pull_loss(queries: torch.Tensor, keys: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """``mean_b sum_n (1 - cos(q_b, key_{selected[b, n]}))`` for queries (B, D), keys (M, D), selected (B, N)."""
    if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"key_pull_loss: need (B, D) queries and (M, D) keys, got {tuple(queries.shape)} and "
                         f"{tuple(keys.shape)}")
    q = F.normalize(queries.detach(), dim=1)
    k = F.normalize(keys, dim=1)[selected]  # (B, N, D)
    cos = (k * q.unsqueeze(1)).sum(-1)
    return (1.0 - cos).sum(dim=1).mean()
