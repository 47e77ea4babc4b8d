"""DKP: Distribution-aware Knowledge Prototyping (Xu, Zhou et al., CVPR 2024) - prototypes and their distillation.

After a session every old identity is summarised by a **distribution prototype**: the per-dimension mean and standard
deviation of its (L2-normalised) features. In the next session, for each batch, one feature is drawn from every
prototype, ``s_k = L2norm(mu_k + eps * sigma_k)`` with ``eps ~ N(0, I)``, and the knowledge is transferred through
affinities:

* new view: ``A_new = softmax_j(cos(f_i, f_j) / lambda_2)``;
* prototype view: ``r_i = softmax_k(cos(f_i, s_k) / lambda_1)`` (each sample's relation to the old identities) and
  ``A_proto = softmax_j(cos(r_i, r_j) / lambda_2)``;
* loss ``KL(A_proto || A_new)`` (batchmean). As in the authors' code, ``A_proto`` is *not* detached: it is also a
  function of the current features, so the term couples the batch geometry with the old identities' distributions.

Adaptation (documented in the strategy): DKP's ResNet learns a per-sample variance branch and the identity variance is
``mean(sigma_i^2) + Var(f)``; our ViT ReID model has no variance branch, so the prototype's variance is the empirical
per-dimension variance of the identity's features only. Definitions follow the paper and a reading of its public code
(github.com/zhoujiahuan1991/CVPR2024-DKP); nothing is copied.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ckda_avalanche.losses.lwf import rowwise_kl, batch_affinity
from ckda_avalanche.losses.numerics import float32_loss


@dataclass(frozen=True)
class DistributionPrototypes:
    """Per-identity feature distributions (diagonal Gaussians) kept between sessions."""

    labels: torch.Tensor
    """(K,) long: the identity label of each prototype (global, offset labels)."""
    modality: torch.Tensor
    """(K,) long: the modality of each prototype, or -1 when visible and infrared are pooled."""
    mean: torch.Tensor
    """(K, D) float: mean of the identity's L2-normalised features."""
    std: torch.Tensor
    """(K, D) float: per-dimension standard deviation of those features (0 for a single-image identity)."""

    def num_bytes(self) -> int:
        """Bytes held by the four tensors."""
        return sum(t.numel() * t.element_size() for t in (self.labels, self.modality, self.mean, self.std))

    @staticmethod
    def concat(parts: "list[DistributionPrototypes]") -> "DistributionPrototypes":
        """Stack several prototype sets (e.g. of several past sessions) into one."""
        if not parts:
            raise ValueError("DistributionPrototypes.concat: empty list")
        return DistributionPrototypes(
            labels=torch.cat([p.labels for p in parts]),
            modality=torch.cat([p.modality for p in parts]),
            mean=torch.cat([p.mean for p in parts]),
            std=torch.cat([p.std for p in parts]),
        )


@float32_loss
@torch.no_grad()
def identity_distributions(
    features: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor | None = None
) -> DistributionPrototypes:
    """Mean and standard deviation of the L2-normalised features of every identity (and modality, if given).

    ``features`` (N, D), ``labels`` (N,); with ``modality`` (N,) one prototype per (identity, modality) present,
    otherwise one per identity with ``modality = -1``. Prototypes come sorted by (label, modality).
    """
    if features.dim() != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"identity_distributions: need (N, D) features and (N,) labels, got {tuple(features.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if features.shape[0] == 0:
        raise ValueError("identity_distributions: no features")
    if modality is not None and modality.shape != labels.shape:
        raise ValueError(f"identity_distributions: modality must be {tuple(labels.shape)}, got {tuple(modality.shape)}")
    feats = F.normalize(features, dim=1)
    labels = labels.long()
    mods = modality.long() if modality is not None else torch.full_like(labels, -1)
    keys = torch.stack([labels, mods], dim=1)
    uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
    k = uniq.shape[0]
    counts = torch.zeros(k, dtype=feats.dtype).index_add_(0, inverse, torch.ones_like(inverse, dtype=feats.dtype))
    mean = torch.zeros(k, feats.shape[1], dtype=feats.dtype).index_add_(0, inverse, feats) / counts[:, None]
    sq = torch.zeros_like(mean).index_add_(0, inverse, feats * feats) / counts[:, None]
    std = (sq - mean * mean).clamp_min(0).sqrt()
    return DistributionPrototypes(labels=uniq[:, 0].clone(), modality=uniq[:, 1].clone(), mean=mean, std=std)


@float32_loss
def sample_prototype_features(
    prototypes: DistributionPrototypes, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One L2-normalised draw ``L2norm(mu + eps * sigma)`` per prototype, (K, D)."""
    noise = torch.randn(prototypes.mean.shape, generator=generator, dtype=prototypes.mean.dtype).to(
        prototypes.mean.device
    )
    return F.normalize(prototypes.mean + noise * prototypes.std, dim=1)


@float32_loss
def prototype_affinity_distillation_loss(
    features: torch.Tensor,
    prototype_samples: torch.Tensor,
    *,
    lambda_1: float = 0.1,
    lambda_2: float = 0.1,
) -> torch.Tensor:
    """DKP's ``KL(A_proto || A_new)`` for batch features (B, D) against sampled prototype features (K, D)."""
    if features.dim() != 2 or prototype_samples.dim() != 2 or features.shape[1] != prototype_samples.shape[1]:
        raise ValueError(
            "prototype_affinity_distillation_loss: need (B, D) features and (K, D) prototype samples, got "
            f"{tuple(features.shape)} and {tuple(prototype_samples.shape)}"
        )
    if lambda_1 <= 0:
        raise ValueError(f"prototype_affinity_distillation_loss: lambda_1 must be > 0, got {lambda_1}")
    f = F.normalize(features, dim=1)
    relation = torch.softmax(f @ F.normalize(prototype_samples, dim=1).t() / lambda_1, dim=1)
    a_proto = batch_affinity(relation, temperature=lambda_2)
    a_new = batch_affinity(f, temperature=lambda_2)
    return rowwise_kl(a_proto, a_new)
