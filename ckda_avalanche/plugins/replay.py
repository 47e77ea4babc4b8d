"""`ReIDReplayPlugin`: bounded exemplar replay for lifelong VI-ReID (experience replay, e.g. Rolnick et al. 2019;
in LReID, Pu et al. AKA CVPR 2021 / Ge et al. PTKP AAAI 2022 keep a few images per old identity).

After each session, ``memory_size // images_per_identity`` identity slots are shared equally among the sessions seen
(older sessions give slots back when a new one arrives); a session fills its slots with identities drawn at random
(seeded), each with ``images_per_identity`` images split evenly between visible and infrared (the other modality
fills in when one has too few). In the next session the exemplars are concatenated to the session's training data,
so the identity-balanced sampler draws batches over old and new identities alike and every ReID loss (identity CE,
triplet, centre terms) sees replayed samples.

Labels: replayed identities keep their global (offset) labels. Design choice: the classifier covers **all identities
seen so far** (the `Replay` strategy sets it to ``offset + num_identities`` of the current session and uses global
labels), so the identity loss applies to replayed samples too.

Memory: exemplars are kept as indices into the past sessions' datasets (read through ``experience.origin_stream``,
from the process's image cache when it holds them, else from disk); what a deployed system would store is reported
as ``exemplar_images`` = number of images x 3 x H x W bytes (uint8 at the training input size).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from avalanche.benchmarks.utils import concat_datasets
from avalanche.core import SupervisedPlugin

from ckda_avalanche.models.backbone_choice import BackboneChoice

__all__ = ["ReplayConfig", "ReIDReplayPlugin", "select_exemplars", "slot_shares"]


@dataclass(frozen=True)
class ReplayConfig(BackboneChoice):
    """Hyperparameters of exemplar replay."""

    memory_size: int = 2000
    """Total exemplar images kept over all past sessions."""
    images_per_identity: int = 4
    """Images kept per replayed identity, split evenly between visible and infrared (>= 2: the cross-modality
    sampler needs each identity in both modalities)."""
    seed: int = 0
    """Seed of the identity / image draw (session s uses seed * 1000 + s)."""

    def __post_init__(self) -> None:
        if self.images_per_identity < 2:
            raise ValueError("ReplayConfig.images_per_identity: expected >= 2 (at least one visible and one infrared "
                             f"image per identity), got {self.images_per_identity}")
        if self.memory_size < self.images_per_identity:
            raise ValueError(f"ReplayConfig.memory_size ({self.memory_size}) must hold at least one identity "
                             f"(images_per_identity = {self.images_per_identity})")


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

    def __init__(self, *, config: ReplayConfig = ReplayConfig()) -> None:
        super().__init__()
        self.config = config
        self.memory: dict[int, list[tuple[int, list[int]]]] = {}
        """Experience index -> [(pid, dataset indices)], trimmed to the session's slot share."""
        self.image_shape: tuple[int, int, int] | None = None
        """(C, H, W) of the training input, to report exemplar bytes."""

    @property
    def exemplar_count(self) -> int:
        """Images currently kept."""
        return sum(len(idx) for entries in self.memory.values() for _, idx in entries)

    def exemplar_indices(self) -> dict[int, list[int]]:
        """Experience index -> flat sorted dataset indices of its exemplars."""
        return {exp: sorted(i for _, idx in entries for i in idx) for exp, entries in self.memory.items()}

    def after_train_dataset_adaptation(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if not self.memory:
            return
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
        slots = self.config.memory_size // self.config.images_per_identity
        sessions = sorted({*self.memory, exp_index})
        shares = dict(zip(sessions, slot_shares(slots, len(sessions))))
        self.memory[exp_index] = select_exemplars(
            list(dataset.targets), list(dataset.modality), num_identities=shares[exp_index],
            images_per_identity=self.config.images_per_identity, seed=self.config.seed * 1000 + exp_index)
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
