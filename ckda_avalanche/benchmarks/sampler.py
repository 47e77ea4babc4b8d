"""Identity-balanced cross-modality batch sampler (P identities x K images x 2 modalities).

CKDA trains with batches of 8 identities x 4 images x 2 modalities, the identities paired across modalities
(docs/method.md §6; the usual VI-ReID batch since Ye et al., AGW, TPAMI 2021). This module builds such batches as a torch
``batch_sampler``.

Batch layout (``P = num_identities``, ``K = num_instances``), ``2 * P * K`` dataset indices::

    [id_1 visible x K, id_2 visible x K, ..., id_P visible x K,  id_1 infrared x K, ..., id_P infrared x K]

i.e. the first half is visible and the second half infrared, with the same identities in the same order, so
``batch[j]`` and ``batch[P*K + j]`` always share an identity.

Epoch: ``passes_per_epoch`` (default 1) passes; each pass shuffles the identities and cuts them into consecutive
groups of P, the last group, when short, topped up with identities drawn at random from those not already in it.
An epoch therefore has ``passes_per_epoch * ceil(num_identities / P)`` batches, every identity appears in at least
``passes_per_epoch`` of them, and the P identities of a batch are always distinct (e.g. RegDB, 206 ids, P=8, K=4:
26 batches of 64). ``batches_per_epoch`` fixes the epoch length instead: the passes continue (each a new shuffle) until that many
batches are drawn, and the epoch stops there, so a large training set (a joint union, replayed exemplars) costs as
many iterations as a small one. `batches_per_epoch_for` gives that length under the two conventions of
`TrainConfig.epoch_length` (the published code bases' epoch is "images": RegDB, 2,060 images per modality, P=8,
K=4: 65 batches).
Within a batch an identity's K images of one modality are drawn without replacement when it has at least K such
images, with replacement otherwise. When P exceeds the number of identities, every batch uses all identities (P is
clamped; the effective value is `identities_per_batch`).

Randomness: ``numpy.random.default_rng((seed, epoch))``. Each ``__iter__`` uses the current epoch and then
advances it by one; `set_epoch` pins the epoch of the next iteration. Two samplers with the same data, seed and
epoch produce identical batches, independently of torch's global RNG.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from .batch_loader import ReIDLoader, make_reid_loader
from .sample import INFRARED, VISIBLE


class CrossModalityIdentitySampler(Sampler[list[int]]):
    """Yields batches of ``2 * P * K`` indices: P identities x K visible, then the same P identities x K infrared.

    ``pids[i]`` / ``modalities[i]`` describe dataset item ``i``. Identities with images in only one modality raise a
    ValueError naming them, unless ``allow_unpaired=True``, in which case they are left out of every batch and
    counted in `num_unpaired_identities` (their ids in `unpaired_identities`).
    """

    def __init__(
        self,
        *,
        pids: Sequence[int],
        modalities: Sequence[int],
        num_identities: int = 8,
        num_instances: int = 4,
        seed: int = 0,
        passes_per_epoch: int = 1,
        batches_per_epoch: int | None = None,
        allow_unpaired: bool = False,
    ) -> None:
        if num_identities < 1:
            raise ValueError(f"num_identities: expected >= 1, got {num_identities}")
        if num_instances < 1:
            raise ValueError(f"num_instances: expected >= 1, got {num_instances}")
        if passes_per_epoch < 1:
            raise ValueError(f"passes_per_epoch: expected >= 1, got {passes_per_epoch}")
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch: expected >= 1 or None, got {batches_per_epoch}")
        pid_arr = np.asarray(pids, dtype=np.int64).reshape(-1)
        mod_arr = np.asarray(modalities, dtype=np.int64).reshape(-1)
        if len(pid_arr) != len(mod_arr):
            raise ValueError(f"pids and modalities differ in length: {len(pid_arr)} vs {len(mod_arr)}")
        bad = sorted(set(np.unique(mod_arr).tolist()) - {VISIBLE, INFRARED})
        if bad:
            raise ValueError(f"modalities: expected {VISIBLE} (visible) or {INFRARED} (infrared), got {bad}")

        self._by_modality: tuple[dict[int, np.ndarray], dict[int, np.ndarray]] = ({}, {})
        for modality in (VISIBLE, INFRARED):
            idx = np.flatnonzero(mod_arr == modality)
            for pid, members in _group_by(pid_arr[idx], idx).items():
                self._by_modality[modality][pid] = members
        all_pids = sorted(set(pid_arr.tolist()))
        paired = [p for p in all_pids if p in self._by_modality[VISIBLE] and p in self._by_modality[INFRARED]]
        self.unpaired_identities: list[int] = sorted(set(all_pids) - set(paired))
        """Identities lacking one modality (left out when ``allow_unpaired``)."""
        if self.unpaired_identities and not allow_unpaired:
            shown = ", ".join(
                f"{p} ({'no infrared' if p in self._by_modality[VISIBLE] else 'no visible'})"
                for p in self.unpaired_identities[:20]
            )
            more = "" if len(self.unpaired_identities) <= 20 else f" and {len(self.unpaired_identities) - 20} more"
            raise ValueError(
                f"{len(self.unpaired_identities)} identities have images in only one modality: {shown}{more}; "
                "every identity needs visible and infrared images (pass allow_unpaired=True to leave them out)"
            )
        if not paired:
            raise ValueError("no identity has both visible and infrared images: nothing to sample")
        self.identities: np.ndarray = np.asarray(paired, dtype=np.int64)
        """Sorted identities that batches draw from."""
        self.identities_per_batch: int = min(num_identities, len(paired))
        """Effective P: ``num_identities`` clamped to the number of usable identities."""
        self.num_instances = num_instances
        self.seed = seed
        self.passes_per_epoch = passes_per_epoch
        self.batches_per_epoch = batches_per_epoch
        self._epoch = 0

    @property
    def num_unpaired_identities(self) -> int:
        """How many identities were excluded for lacking one modality."""
        return len(self.unpaired_identities)

    @property
    def batch_size(self) -> int:
        """Indices per batch: ``2 * P * K`` with the effective P."""
        return 2 * self.identities_per_batch * self.num_instances

    @property
    def epoch(self) -> int:
        """Epoch the next ``__iter__`` will use."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Pin the epoch (hence the random stream) of the next iteration."""
        if epoch < 0:
            raise ValueError(f"epoch: expected >= 0, got {epoch}")
        self._epoch = int(epoch)

    def __len__(self) -> int:
        if self.batches_per_epoch is not None:
            return self.batches_per_epoch
        return self.passes_per_epoch * self._batches_per_pass()

    def _batches_per_pass(self) -> int:
        return math.ceil(len(self.identities) / self.identities_per_batch)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self._epoch))
        self._epoch += 1
        for group in self._identity_groups(rng):
            visible = [self._draw(rng, VISIBLE, pid) for pid in group]
            infrared = [self._draw(rng, INFRARED, pid) for pid in group]
            yield np.concatenate(visible + infrared).tolist()

    def _identity_groups(self, rng: np.random.Generator) -> list[np.ndarray]:
        p = self.identities_per_batch
        groups: list[np.ndarray] = []
        passes = self.passes_per_epoch
        if self.batches_per_epoch is not None:
            passes = math.ceil(self.batches_per_epoch / self._batches_per_pass())
        for _ in range(passes):
            order = rng.permutation(self.identities)
            groups.extend(order[i : i + p] for i in range(0, len(order), p))
            last = groups[-1]
            if len(last) < p:
                others = np.setdiff1d(self.identities, last)
                groups[-1] = np.concatenate([last, rng.choice(others, size=p - len(last), replace=False)])
        return groups[: len(self)]

    def _draw(self, rng: np.random.Generator, modality: int, pid: int) -> np.ndarray:
        pool = self._by_modality[modality][int(pid)]
        return rng.choice(pool, size=self.num_instances, replace=len(pool) < self.num_instances)


def _group_by(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """``{key: values with that key, in their original order}``."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    uniques, starts = np.unique(sorted_keys, return_index=True)
    bounds = list(starts[1:]) + [len(keys)]
    return {int(k): values[order[s:e]] for k, s, e in zip(uniques, starts, bounds)}


EPOCH_LENGTHS = ("images", "identities")
"""Epoch-length conventions of `batches_per_epoch_for`."""


def batches_per_epoch_for(
    convention: str, *, num_identities: int, num_visible: int, num_infrared: int, identities_per_batch: int,
    instances_per_identity: int,
) -> int:
    """Batches in one epoch of a training set under an epoch-length convention (P = ``identities_per_batch``,
    K = ``instances_per_identity``).

    * ``"images"``: ``floor(max(#visible, #infrared) / (P * K)) + 1``, the epoch of the ``IdentitySampler`` of the
      VI-ReID code bases this line of work builds on (Ye et al., AGW, TPAMI 2021; reused by DMM-CDCN and later
      VI-LReID code): one epoch draws about as many images per modality as the larger modality holds.
    * ``"identities"``: ``ceil(#identities / P)``, one pass over the identities (every identity in at least one
      batch); shorter when identities have many images (e.g. 2.5x on RegDB, ~14x on SYSU-MM01 at P=8, K=4).
    """
    if convention == "images":
        return max(num_visible, num_infrared) // (identities_per_batch * instances_per_identity) + 1
    if convention == "identities":
        return math.ceil(num_identities / max(1, min(identities_per_batch, num_identities)))
    raise ValueError(f"epoch length convention: expected one of {EPOCH_LENGTHS}, got {convention!r}")


def make_identity_batch_loader(
    dataset: Any,
    *,
    num_identities: int = 8,
    num_instances: int = 4,
    seed: int = 0,
    passes_per_epoch: int = 1,
    batches_per_epoch: int | None = None,
    allow_unpaired: bool = False,
    num_workers: int | str = 0,
    pin_memory: bool | None = None,
    persistent_workers: bool = False,
    device: torch.device | str | None = None,
) -> ReIDLoader:
    """`batch_loader.ReIDLoader` over an Avalanche dataset with `CrossModalityIdentitySampler` batches.

    Identities come from the dataset's ``targets`` data attribute and modalities from its ``modality`` attribute
    (both set by `make_reid_dataset`; preserved by Avalanche's subset/concat). Images are transformed per batch
    (``device``: where), other fields collated with the dataset's own ``collate_fn`` (Avalanche's), so a minibatch
    is ``(images, pids, camids, modalities, task_labels)``. ``num_workers`` may be ``"auto"``
    (`batch_loader.resolve_num_workers`); ``pin_memory`` defaults to True on CUDA. The sampler is reachable as
    ``loader.batch_sampler`` (e.g. to call ``set_epoch``).
    """
    for attr in ("targets", "modality"):
        if not hasattr(dataset, attr):
            raise ValueError(
                f"dataset has no {attr!r} data attribute: build it with "
                "ckda_avalanche.benchmarks.reid_dataset.make_reid_dataset"
            )
    sampler = CrossModalityIdentitySampler(
        pids=list(dataset.targets),
        modalities=list(dataset.modality),
        num_identities=num_identities,
        num_instances=num_instances,
        seed=seed,
        passes_per_epoch=passes_per_epoch,
        batches_per_epoch=batches_per_epoch,
        allow_unpaired=allow_unpaired,
    )
    return make_reid_loader(dataset, batch_sampler=sampler, num_workers=num_workers, device=device,
                            pin_memory=pin_memory, persistent_workers=persistent_workers)
