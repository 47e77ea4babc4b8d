"""Retrieval protocols: which items of a dataset's test pool are query and gallery, trial by trial.

A reader builds its test pool once (every test item any trial may use, in a fixed order); an `EvalProtocol` then
turns that pool into `RetrievalTrial`s using only the samples' metadata (pid, camera, modality, tracklet), so the
features of the pool are extracted once and each trial only indexes into them. Galleries that the published
protocols draw at random (SYSU-MM01 single/multi-shot, LLCM one image per identity and camera) are drawn here with a
seeded RNG, so a trial is a pure function of (pool metadata, seed).

Protocols follow ``docs/protocol.md``: SYSU-MM01 as in Wu et al. (ICCV 2017), RegDB as in Nguyen et al.
(Sensors 2017) / Ye et al., LLCM as in Zhang & Wang (CVPR 2023), HITSZ-VCM as in Lin et al. (CVPR 2022).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .sample import ReIDSample

RANKING_RULES: tuple[str, ...] = ("market", "sysu", "none")
"""Ranking rules the evaluation knows: same-id-same-camera removal, the SYSU-MM01 camera-3/camera-2 rule, none."""


@dataclass(frozen=True)
class RetrievalTrial:
    """One query/gallery split of a (possibly tracklet-grouped) pool."""

    name: str
    """Trial name, e.g. ``"vis2ir/trial0"`` or ``"all/single/trial3"``."""
    query: np.ndarray
    """Sorted int64 indices of the query items in the pool."""
    gallery: np.ndarray
    """Sorted int64 indices of the gallery items in the pool."""
    rule: str
    """Ranking rule: ``"market"``, ``"sysu"`` or ``"none"``."""


@dataclass(frozen=True)
class PoolSelector:
    """A metadata filter over pool items; every field left ``None`` accepts everything."""

    modality: int | None = None
    """Keep only items of this modality (0 visible, 1 infrared)."""
    cameras: frozenset[int] | None = None
    """Keep only items whose camera is in this set."""
    tracklets: frozenset[int] | None = None
    """Keep only items whose tracklet is in this set (or, with `exclude_tracklets`, not in it)."""
    exclude_tracklets: bool = False
    """Invert the `tracklets` filter: keep items whose tracklet is NOT in the set."""

    def mask(self, modality: np.ndarray, camids: np.ndarray, tracklets: np.ndarray) -> np.ndarray:
        """Boolean mask of the pool items this selector keeps."""
        keep = np.ones(len(modality), dtype=bool)
        if self.modality is not None:
            keep &= modality == self.modality
        if self.cameras is not None:
            keep &= np.isin(camids, np.fromiter(self.cameras, dtype=np.int64))
        if self.tracklets is not None:
            inside = np.isin(tracklets, np.fromiter(self.tracklets, dtype=np.int64))
            keep &= ~inside if self.exclude_tracklets else inside
        return keep


@dataclass(frozen=True)
class TrialSpec:
    """How one trial selects its query and gallery from a pool."""

    name: str
    """Trial name reported with the scores."""
    rule: str
    """Ranking rule of the trial (see `RANKING_RULES`)."""
    query: PoolSelector
    """Which pool items are queries (all of them)."""
    gallery: PoolSelector
    """Which pool items may enter the gallery."""
    gallery_shot: int | None = None
    """None: every selected item is in the gallery; k: k random items per (identity, camera)."""
    gallery_seed: int = 0
    """Seed of the gallery draw (the trial number in the published protocols)."""

    def __post_init__(self) -> None:
        if self.rule not in RANKING_RULES:
            raise ValueError(f"trial {self.name!r}: rule must be one of {RANKING_RULES}, got {self.rule!r}")
        if self.gallery_shot is not None and self.gallery_shot < 1:
            raise ValueError(f"trial {self.name!r}: gallery_shot must be >= 1 or None, got {self.gallery_shot}")


def sample_gallery_per_id_camera(
    pool_indices: np.ndarray, pids: np.ndarray, camids: np.ndarray, *, shot: int, seed: int
) -> np.ndarray:
    """Draw ``shot`` items per (identity, camera) among ``pool_indices``; returns the sorted drawn indices.

    ``pids`` / ``camids`` are indexed by pool index. RNG: ``numpy.random.default_rng(seed)``; the (pid, camera) groups
    are visited in ascending (pid, camera) order and each draws ``min(shot, group size)`` distinct items with
    ``rng.choice(group, size, replace=False)`` (candidates in pool order). A group smaller than ``shot`` contributes all
    its items, an absent (pid, camera) contributes none. Deterministic for a given pool and seed.
    """
    if shot < 1:
        raise ValueError(f"shot must be >= 1, got {shot}")
    pool_indices = np.asarray(pool_indices, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if len(pool_indices) == 0:
        return pool_indices
    keys = np.stack([pids[pool_indices], camids[pool_indices]], axis=1)
    order = np.lexsort((pool_indices, keys[:, 1], keys[:, 0]))  # by pid, then camera, then pool order
    sorted_keys = keys[order]
    boundaries = np.flatnonzero(np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)) + 1
    drawn: list[np.ndarray] = []
    for group in np.split(pool_indices[order], boundaries):
        drawn.append(rng.choice(group, size=min(shot, len(group)), replace=False))
    return np.sort(np.concatenate(drawn))


def _pool_arrays(pool: Sequence[ReIDSample]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pids = np.fromiter((s.pid for s in pool), dtype=np.int64, count=len(pool))
    camids = np.fromiter((s.camid for s in pool), dtype=np.int64, count=len(pool))
    modality = np.fromiter((s.modality for s in pool), dtype=np.int64, count=len(pool))
    tracklets = np.fromiter((s.tracklet for s in pool), dtype=np.int64, count=len(pool))
    return pids, camids, modality, tracklets


class EvalProtocol:
    """A named list of trial specifications, evaluated on a pool's metadata only (no file reads)."""

    def __init__(self, *, name: str, specs: Sequence[TrialSpec], group_by_tracklet: bool = False) -> None:
        if name not in ("paper", "full"):
            raise ValueError(f"protocol name must be 'paper' or 'full', got {name!r}")
        if not specs:
            raise ValueError("an EvalProtocol needs at least one trial specification")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"trial names must be unique, got {names}")
        self.name = name
        self.group_by_tracklet = group_by_tracklet
        self.specs: tuple[TrialSpec, ...] = tuple(specs)

    def __repr__(self) -> str:
        return (f"EvalProtocol(name={self.name!r}, group_by_tracklet={self.group_by_tracklet}, "
                f"trials={[spec.name for spec in self.specs]})")

    def trials(self, pool: Sequence[ReIDSample]) -> list[RetrievalTrial]:
        """Build every trial on ``pool`` (the tracklet-grouped pool when `group_by_tracklet` is true).

        Raises ValueError when a trial ends up with an empty query or gallery (wrong pool for this protocol).
        """
        pids, camids, modality, tracklets = _pool_arrays(pool)
        result = []
        for spec in self.specs:
            query = np.flatnonzero(spec.query.mask(modality, camids, tracklets)).astype(np.int64)
            candidates = np.flatnonzero(spec.gallery.mask(modality, camids, tracklets)).astype(np.int64)
            if spec.gallery_shot is None:
                gallery = candidates
            else:
                gallery = sample_gallery_per_id_camera(candidates, pids, camids,
                                                       shot=spec.gallery_shot, seed=spec.gallery_seed)
            if len(query) == 0 or len(gallery) == 0:
                raise ValueError(f"protocol {self.name!r} trial {spec.name!r}: {len(query)} query and "
                                 f"{len(gallery)} gallery items in a pool of {len(pool)}; is this the right pool?")
            result.append(RetrievalTrial(name=spec.name, query=query, gallery=gallery, rule=spec.rule))
        return result


def group_pool_by_tracklet(pool: Sequence[ReIDSample]) -> tuple[list[ReIDSample], list[np.ndarray]]:
    """Group pool items by `tracklet` for mean-feature evaluation (HITSZ-VCM option).

    Returns ``(grouped, groups)``: one sample per tracklet in order of first appearance (the metadata of its first
    frame) and, per tracklet, the int64 pool indices of its frames; averaging ``features[groups[i]]`` gives the
    feature of ``grouped[i]``. Raises ValueError when an item has no tracklet (-1) or a tracklet mixes identities,
    cameras or modalities.
    """
    first_index: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for index, sample in enumerate(pool):
        if sample.tracklet < 0:
            raise ValueError(f"pool item {index} ({sample.path}) has no tracklet id; cannot group by tracklet")
        if sample.tracklet not in first_index:
            first_index[sample.tracklet] = index
            members[sample.tracklet] = []
        else:
            head = pool[first_index[sample.tracklet]]
            if (head.pid, head.camid, head.modality) != (sample.pid, sample.camid, sample.modality):
                raise ValueError(f"tracklet {sample.tracklet} mixes (pid, camid, modality) "
                                 f"{(head.pid, head.camid, head.modality)} and "
                                 f"{(sample.pid, sample.camid, sample.modality)} at pool item {index}")
        members[sample.tracklet].append(index)
    grouped = [pool[first_index[t]] for t in first_index]
    groups = [np.asarray(members[t], dtype=np.int64) for t in first_index]
    return grouped, groups
