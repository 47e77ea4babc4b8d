"""`ReIDReplayPlugin`: bounded exemplar replay for lifelong VI-ReID (experience replay, e.g. Rolnick et al. 2019;
in LReID, Pu et al. AKA CVPR 2021 / Ge et al. PTKP AAAI 2022 keep a few images per old identity).

After each session, the memory's identity slots are shared equally among the sessions seen (older sessions give
slots back when a new one arrives); a session fills its slots with identities drawn at random (seeded), each with
``images_per_identity`` images split evenly between visible and infrared (the other modality fills in when one has
too few). In the next session the exemplars are concatenated to the session's training data and, by default
(``mix_into_batch``), every batch is the batch fine-tuning would draw plus a memory batch of as many identities
(Avalanche's ``ReplayPlugin`` convention: more samples per step, not more steps; `Replay.make_train_dataloader`).
With ``mix_into_batch=False`` the identity-balanced sampler draws over old and new identities alike. Either way
every ReID loss (identity CE, triplet, centre terms) sees replayed samples.

Memory size: the published setting keeps 500 identities x 4 images (2,000) on the real four-dataset stream (RegDB
206, SYSU-MM01 395, LLCM 713 training identities before HITSZ-VCM: `PUBLISHED_STREAM_IDENTITIES`, counted from the
official index files by ``benchmarks/replay_memory_share.py``). There it holds, at the start of sessions 2, 3 and 4,
min(1, 500 / old identities) = 100%, 83.2% and 38.1% of the old identities: on average `PUBLISHED_MEAN_SHARE`
(73.7%). ``memory_size=None`` (the default) sizes the memory for the stream actually trained: the fewest identities
whose mean share over sessions 2..S reaches that figure (`benchmark_memory_identities`; the default synthetic stream,
64 identities per session: 94 identities, 376 images, holding 100%, 73.4% and 49.0%). A number fixes the images
instead (2,000: the published size, whatever the stream).

Labels: replayed identities keep their global (offset) labels. Design choice: the classifier covers **all identities
seen so far** (the `Replay` strategy sets it to ``offset + num_identities`` of the current session and uses global
labels), so the identity loss applies to replayed samples too.

Memory: exemplars are kept as indices into the past sessions' datasets (read through ``experience.origin_stream``,
from the process's image cache when it holds them, else from disk); what a deployed system would store is reported
as ``exemplar_images`` = number of images x 3 x H x W bytes (uint8 at the training input size).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from avalanche.benchmarks.utils import concat_datasets
from avalanche.core import SupervisedPlugin

__all__ = ["PUBLISHED_MEAN_SHARE", "PUBLISHED_STREAM_IDENTITIES", "ReIDReplayPlugin", "benchmark_memory_identities",
           "check_replay_settings", "mean_old_share", "select_exemplars", "slot_shares"]

PUBLISHED_MEMORY_IDENTITIES = 500
"""Identities of the published memory (2,000 images at 4 per identity)."""

PUBLISHED_STREAM_IDENTITIES: tuple[int, ...] = (206, 395, 713, 500)
"""Training identities of RegDB (trial 1), SYSU-MM01 (train + val), LLCM and HITSZ-VCM under the paper protocol
(``benchmarks/replay_memory_share.py`` counts them from the official index files)."""


def mean_old_share(memory_identities: int, session_identities: Sequence[int]) -> float:
    """Mean over sessions 2..S of min(1, memory identities / identities of the earlier sessions); 1.0 for one
    session."""
    old = np.cumsum(np.asarray(session_identities, dtype=np.float64))[:-1]
    if old.size == 0:
        return 1.0
    return float(np.mean(np.minimum(1.0, memory_identities / old)))


PUBLISHED_MEAN_SHARE = mean_old_share(PUBLISHED_MEMORY_IDENTITIES, PUBLISHED_STREAM_IDENTITIES)
"""Mean share of old identities the published memory holds over sessions 2-4 of the real stream (0.737)."""


def benchmark_memory_identities(session_identities: Sequence[int], *, target: float = PUBLISHED_MEAN_SHARE) -> int:
    """The fewest memory identities whose `mean_old_share` on a stream with these per-session identity counts reaches
    ``target``; `PUBLISHED_MEMORY_IDENTITIES` for a one-session stream."""
    counts = [int(c) for c in session_identities]
    if len(counts) < 2:
        return PUBLISHED_MEMORY_IDENTITIES
    for memory in range(1, sum(counts) + 1):
        if mean_old_share(memory, counts) >= target - 1e-12:
            return memory
    return sum(counts)  # pragma: no cover - the share is 1 at sum(counts)


def check_replay_settings(owner: str, *, memory_size: int | None, images_per_identity: int) -> None:
    """Raise a ValueError naming ``owner`` (the plugin or its method config) and the field of a bad setting."""
    if images_per_identity < 2:
        raise ValueError(f"{owner}.images_per_identity: expected >= 2 (at least one visible and one infrared "
                         f"image per identity), got {images_per_identity}")
    if memory_size is not None and memory_size < images_per_identity:
        raise ValueError(f"{owner}.memory_size ({memory_size}) must hold at least one identity "
                         f"(images_per_identity = {images_per_identity})")


def slot_shares(total_slots: int, sessions: int) -> list[int]:
    """Identity slots per session, as equal as possible, earlier sessions getting the remainder."""
    if sessions <= 0:
        return []
    base, extra = divmod(total_slots, sessions)
    return [base + (1 if i < extra else 0) for i in range(sessions)]


def select_exemplars(
    pids: Sequence[int], modalities: Sequence[int], *, num_identities: int, images_per_identity: int, seed: int
) -> list[tuple[int, list[int]]]:
    """Up to ``num_identities`` identities (random order), each with up to ``images_per_identity`` dataset indices.

    Only identities with images in both modalities are eligible (the cross-modality sampler cannot batch the
    others). Images are split ceil/floor between visible (0) and infrared (1), the other modality filling a
    shortfall. Returns ``[(pid, [indices...]), ...]`` in priority order,
    so trimming a session's memory keeps a prefix.
    """
    pids_arr = np.asarray(pids, dtype=np.int64)
    mods_arr = np.asarray(modalities, dtype=np.int64)
    if pids_arr.shape != mods_arr.shape:
        raise ValueError(f"select_exemplars: {len(pids_arr)} pids for {len(mods_arr)} modalities")
    rng = np.random.default_rng(seed)
    ids = np.unique(pids_arr)
    rng.shuffle(ids)
    paired = [p for p in ids if {0, 1} <= set(mods_arr[pids_arr == p].tolist())]
    chosen: list[tuple[int, list[int]]] = []
    for pid in paired[:num_identities]:
        by_mod = {m: rng.permutation(np.flatnonzero((pids_arr == pid) & (mods_arr == m))).tolist() for m in (0, 1)}
        want = {0: (images_per_identity + 1) // 2, 1: images_per_identity // 2}
        picked = by_mod[0][:want[0]] + by_mod[1][:want[1]]
        rest = by_mod[0][want[0]:] + by_mod[1][want[1]:]
        picked += rest[: images_per_identity - len(picked)]
        chosen.append((int(pid), sorted(int(i) for i in picked)))
    return chosen


class ReIDReplayPlugin(SupervisedPlugin):
    """Concatenates past exemplars to the training data; refreshes the memory after each session."""

    def __init__(self, *, memory_size: int | None = None, images_per_identity: int = 4, seed: int = 0) -> None:
        """The keywords are the fields of the same names of `ReplayConfig` (``ckda_avalanche.strategies.replay``),
        with its defaults; bad values raise a ValueError naming the keyword."""
        super().__init__()
        check_replay_settings("ReIDReplayPlugin", memory_size=memory_size, images_per_identity=images_per_identity)
        self.memory_size = memory_size
        """Total exemplar images kept over all past sessions; None: sized for the stream (`identity_slots`)."""
        self.images_per_identity = images_per_identity
        """Images kept per replayed identity, split evenly between visible and infrared."""
        self.seed = seed
        """Seed of the identity / image draw (session s uses seed * 1000 + s)."""
        self.memory: dict[int, list[tuple[int, list[int]]]] = {}
        """Experience index -> [(pid, dataset indices)], trimmed to the session's slot share."""
        self.image_shape: tuple[int, int, int] | None = None
        """(C, H, W) of the training input, to report exemplar bytes."""
        self.current_size: int = 0
        """Items of the current session's own data at the front of the adapted dataset (0: no memory used)."""

    @property
    def exemplar_count(self) -> int:
        """Images currently kept."""
        return sum(len(idx) for entries in self.memory.values() for _, idx in entries)

    def exemplar_indices(self) -> dict[int, list[int]]:
        """Experience index -> flat sorted dataset indices of its exemplars."""
        return {exp: sorted(i for _, idx in entries for i in idx) for exp, entries in self.memory.items()}

    def identity_slots(self, strategy: Any) -> int:
        """Identities the memory holds: ``memory_size // images_per_identity``, or for ``memory_size=None``
        `benchmark_memory_identities` of the stream's per-session identity counts."""
        if self.memory_size is not None:
            return self.memory_size // self.images_per_identity
        stream = strategy.experience.origin_stream
        counts = [int(strategy.session_info(stream[i]).num_identities) for i in range(len(stream))]
        return benchmark_memory_identities(counts)

    def after_train_dataset_adaptation(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.current_size = 0
        if not self.memory:
            return
        self.current_size = len(strategy.adapted_dataset)
        stream = strategy.experience.origin_stream
        parts = [strategy.adapted_dataset]
        for exp_index, indices in sorted(self.exemplar_indices().items()):
            if exp_index >= len(stream):
                raise IndexError(f"ReIDReplayPlugin: exemplars of experience {exp_index} but the stream has "
                                 f"{len(stream)} experiences")
            parts.append(stream[exp_index].dataset.subset(indices).train())
        strategy.adapted_dataset = concat_datasets(parts)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if self.image_shape is None:
            self.image_shape = tuple(int(v) for v in strategy.mb_x.shape[1:])  # type: ignore[assignment]

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        exp_index = int(strategy.experience.current_experience)
        dataset = strategy.experience.dataset
        slots = self.identity_slots(strategy)
        sessions = sorted({*self.memory, exp_index})
        shares = dict(zip(sessions, slot_shares(slots, len(sessions))))
        self.memory[exp_index] = select_exemplars(
            list(dataset.targets), list(dataset.modality), num_identities=shares[exp_index],
            images_per_identity=self.images_per_identity, seed=self.seed * 1000 + exp_index)
        for exp, share in shares.items():
            self.memory[exp] = self.memory[exp][:share]

    def state_dict(self) -> dict[str, Any]:
        return {"memory": {int(k): [(p, list(i)) for p, i in v] for k, v in self.memory.items()},
                "image_shape": self.image_shape}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("memory", "image_shape"):
            if key not in state:
                raise KeyError(f"ReIDReplayPlugin.load_state_dict: missing entry {key!r}")
        self.memory = {int(k): [(int(p), [int(j) for j in i]) for p, i in v] for k, v in state["memory"].items()}
        self.image_shape = None if state["image_shape"] is None else tuple(state["image_shape"])

    def memory_report(self) -> dict[str, int]:
        per_image = int(np.prod(self.image_shape)) if self.image_shape is not None else 0
        return {"exemplar_images": self.exemplar_count * per_image}
