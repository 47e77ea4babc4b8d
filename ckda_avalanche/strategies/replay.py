"""`Replay` and its config `ReplayConfig`: bounded exemplar replay (images per old identity and modality) with the usual ReID losses on replayed
samples; the classifier covers every identity seen so far. See `plugins/replay.py` for memory and selection, and
`benchmarks/mixed_sampler.py` for the batches (each one fine-tuning's batch plus a memory batch, by default)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avalanche.core import BasePlugin

from ckda_avalanche.benchmarks.batch_loader import make_reid_loader
from ckda_avalanche.benchmarks.mixed_sampler import MixedReplayBatchSampler
from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.plugins.replay import ReIDReplayPlugin, check_replay_settings
from ckda_avalanche.strategies.base import ReIDTemplate
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["Replay", "ReplayConfig", "seen_label_range"]


@dataclass(frozen=True)
class ReplayConfig(BackboneChoice):
    """Hyperparameters of exemplar replay."""

    memory_size: int | None = None
    """Total exemplar images kept over all past sessions; None: sized for the stream trained, the published
    memory's mean share of old identities on the real four-dataset stream (`benchmark_memory_identities` x
    images_per_identity; 376 images on the default synthetic stream); 2000 is the published size."""
    images_per_identity: int = 4
    """Images kept per replayed identity, split evenly between visible and infrared (>= 2: the cross-modality
    sampler needs each identity in both modalities)."""
    seed: int = 0
    """Seed of the identity / image draw (session s uses seed * 1000 + s)."""
    mix_into_batch: bool = True
    """Each batch is fine-tuning's batch plus a memory batch (Avalanche's ReplayPlugin convention: more samples per
    step, same steps); False: one sampler over the session's data and the memory together (the batch size and,
    with ``equal_iterations``, the steps of every other method)."""
    memory_identities_per_batch: int | None = None
    """Identities of the memory part of each mixed batch (None: TrainConfig.num_identities, as Avalanche's
    batch_size_mem defaults to the training batch size)."""

    def __post_init__(self) -> None:
        check_replay_settings("ReplayConfig", memory_size=self.memory_size,
                              images_per_identity=self.images_per_identity)
        if self.memory_identities_per_batch is not None and self.memory_identities_per_batch < 1:
            raise ValueError("ReplayConfig.memory_identities_per_batch: expected >= 1 or None, got "
                             f"{self.memory_identities_per_batch}")


def seen_label_range(strategy: ReIDTemplate) -> tuple[int, int]:
    """(first label, number of labels) spanned by the training experiences up to the current one (inclusive).

    Sessions use disjoint label ranges ``[offset_s, offset_s + n_s)`` (docs/ARCHITECTURE.md); the span must have no
    gap, otherwise a ValueError names the offsets.
    """
    experience = strategy.experience
    current = int(experience.current_experience)
    infos = [strategy.session_info(experience.origin_stream[i]) for i in range(current + 1)]
    ranges = sorted((int(i.label_offset), int(i.label_offset) + int(i.num_identities)) for i in infos)
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        if start != end:
            raise ValueError(f"seen_label_range: session label ranges are not contiguous: {ranges}")
    return ranges[0][0], ranges[-1][1] - ranges[0][0]


class Replay(MethodStrategy[ReplayConfig]):
    """`ReIDTemplate` + `ReIDReplayPlugin`; in training the classifier spans all identities seen so far and the
    criterion gets labels relative to the first session's offset, so replayed identities keep their labels.

    Keywords: those of `MethodStrategy` (``method: ReplayConfig = ReplayConfig()``)."""

    default_method = ReplayConfig()

    def make_method_plugins(self, method: ReplayConfig) -> list[BasePlugin]:
        self.replay = ReIDReplayPlugin(memory_size=method.memory_size, images_per_identity=method.images_per_identity,
                                       seed=method.seed)
        return [self.replay]

    def classifier_labels(self) -> tuple[int, int]:
        """The classifier covers every identity seen so far."""
        return seen_label_range(self)

    def epoch_batches(self) -> int:
        """With mixed batches the epoch is counted on the session's own data (the memory rides along)."""
        if self.method.mix_into_batch and self.replay.current_size:
            dataset = self.adapted_dataset
            try:
                self.adapted_dataset = dataset.subset(range(self.replay.current_size))
                return super().epoch_batches()
            finally:
                self.adapted_dataset = dataset
        return super().epoch_batches()

    def make_train_dataloader(self, **kwargs: Any) -> None:
        """`ReIDTemplate`'s loader in session 1 (or with ``mix_into_batch=False``); afterwards batches of
        `MixedReplayBatchSampler`: fine-tuning's batch (same seed and length) plus a memory batch."""
        split = self.replay.current_size
        if not self.method.mix_into_batch or not split:
            super().make_train_dataloader(**kwargs)
            return
        dataset = self.adapted_dataset
        memory_ids = self.method.memory_identities_per_batch or self.config.num_identities
        sampler = MixedReplayBatchSampler(
            pids=list(dataset.targets), modalities=list(dataset.modality), split=split,
            num_identities=self.config.num_identities, num_memory_identities=memory_ids,
            num_instances=self.config.num_instances, seed=self.config.seed * 1000 + self.session_index,
            batches_per_epoch=self.epoch_batches(), allow_unpaired=self.config.allow_unpaired_identities)
        self.dataloader = make_reid_loader(dataset, batch_sampler=sampler, num_workers=self.config.num_workers,
                                           device=self.device, persistent_workers=True)
