"""Dual-modality identity prototypes of CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §5.2).

After a session, the merged model runs in eval mode (test transform) over the session's whole training set; for
each identity and modality the prototype is the mean of L2norm(BN(f)) (the model's eval-mode output). No image is
kept, only these means.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from ckda_avalanche.benchmarks.batch_loader import make_reid_loader

__all__ = ["DualPrototypes", "compute_dual_prototypes"]


class DualPrototypes(NamedTuple):
    """Per-identity means of the retrieval feature, one set per modality (rows sorted by identity)."""

    visible: torch.Tensor
    """(N_v, D) visible prototypes."""
    visible_ids: torch.Tensor
    """(N_v,) identity label of each visible prototype."""
    infrared: torch.Tensor
    """(N_i, D) infrared prototypes."""
    infrared_ids: torch.Tensor
    """(N_i,) identity label of each infrared prototype."""

    def to(self, device: torch.device | str) -> DualPrototypes:
        return DualPrototypes(*(t.to(device) for t in self))

    @staticmethod
    def concatenate(items: list[DualPrototypes]) -> DualPrototypes:
        """All prototypes of several sessions stacked (identity labels are globally offset, so they stay distinct)."""
        return DualPrototypes(*(torch.cat([getattr(p, f) for p in items]) for f in DualPrototypes._fields))


def _means(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if labels.numel() == 0:
        return features.new_zeros(0, features.shape[1]), labels.new_zeros(0)
    ids, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    sums = features.new_zeros(ids.numel(), features.shape[1]).index_add_(0, inverse, features)
    counts = torch.bincount(inverse, minlength=ids.numel()).to(features.dtype).unsqueeze(1)
    return sums / counts, ids


@torch.no_grad()
def compute_dual_prototypes(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    num_workers: int | str = "auto",
    visible_as_infrared: bool = False,
) -> DualPrototypes:
    """Prototypes of ``dataset`` (an Avalanche dataset with minibatches (image, pid, camid, modality, task)).

    ``dataset`` should already use the test transform (``experience.dataset.eval()``). The model is put in eval mode
    for the pass and its previous mode restored. ``visible_as_infrared`` reproduces quirk (a) of the published
    setting (RegDB "thermal" prototypes computed from visible images): the infrared set is a copy of the visible one.
    Images are read through `batch_loader.make_reid_loader` (``num_workers``: a number or "auto"; the memory cache
    of the training set is reused).
    """
    was_training = model.training
    model.eval()
    loader = make_reid_loader(dataset, batch_size=batch_size, num_workers=num_workers, device=device)
    feats, pids, mods = [], [], []
    try:
        for batch in loader:
            x, pid, modality = batch[0].to(device), batch[1], batch[3]
            with autocast():
                out = model(x, modality.to(device))
            feats.append(out.float().cpu())
            pids.append(pid.long())
            mods.append(modality.long())
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("compute_dual_prototypes: the dataset is empty")
    feat, pid, mod = torch.cat(feats), torch.cat(pids), torch.cat(mods)
    visible, visible_ids = _means(feat[mod == 0], pid[mod == 0])
    if visible_as_infrared:
        infrared, infrared_ids = visible.clone(), visible_ids.clone()
    else:
        infrared, infrared_ids = _means(feat[mod == 1], pid[mod == 1])
    return DualPrototypes(visible, visible_ids, infrared, infrared_ids).to(device)
