"""Replay batches in the convention of Avalanche's ``ReplayPlugin``: every batch is a batch of the current session's
data **plus** a batch drawn from the memory (more samples per step, not more steps).

The dataset is the concatenation ``[current session's items (0 .. split-1), memory items (split .. N-1)]``. Two
`CrossModalityIdentitySampler` draw independently: one over the current items, with exactly the seed and epoch
length a method without memory uses (so its part of each batch is that method's batch), one over the memory items
with its own seed. A batch keeps the layout of `sampler.py` (all visible first, then the same identities infrared,
in the same order)::

    [current P ids visible x K, memory P' ids visible x K,  current P ids infrared x K, memory P' ids infrared x K]

so the batch is ``2 (P + P') K`` items and ``batch[j]`` / ``batch[(P + P') K + j]`` still share an identity.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from .sampler import CrossModalityIdentitySampler

__all__ = ["MEMORY_SEED_OFFSET", "MixedReplayBatchSampler"]

MEMORY_SEED_OFFSET = 7_919_000
"""Added to the current part's seed to seed the memory part (any constant keeps the two streams apart)."""


class MixedReplayBatchSampler(Sampler[list[int]]):
    """Batches of `CrossModalityIdentitySampler` over items ``[0, split)`` joined with memory batches over
    ``[split, N)``; ``len`` is the current part's (``batches_per_epoch``)."""

    def __init__(self, *, pids: Sequence[int], modalities: Sequence[int], split: int, num_identities: int,
                 num_memory_identities: int, num_instances: int, seed: int, batches_per_epoch: int,
                 allow_unpaired: bool = False) -> None:
        pids, modalities = list(pids), list(modalities)
        if not 0 < split < len(pids):
            raise ValueError(f"MixedReplayBatchSampler: split must leave current and memory items, got split={split} "
                             f"of {len(pids)} items")
        if num_memory_identities < 1:
            raise ValueError(f"num_memory_identities: expected >= 1, got {num_memory_identities}")
        self.split = split
        self.current = CrossModalityIdentitySampler(
            pids=pids[:split], modalities=modalities[:split], num_identities=num_identities,
            num_instances=num_instances, seed=seed, batches_per_epoch=batches_per_epoch,
            allow_unpaired=allow_unpaired)
        self.memory = CrossModalityIdentitySampler(
            pids=pids[split:], modalities=modalities[split:], num_identities=num_memory_identities,
            num_instances=num_instances, seed=seed + MEMORY_SEED_OFFSET, batches_per_epoch=batches_per_epoch,
            allow_unpaired=allow_unpaired)

    @property
    def batch_size(self) -> int:
        """Items per batch: the current part's plus the memory part's."""
        return self.current.batch_size + self.memory.batch_size

    @property
    def epoch(self) -> int:
        """Epoch the next ``__iter__`` will use."""
        return self.current.epoch

    def set_epoch(self, epoch: int) -> None:
        """Pin the epoch of both parts."""
        self.current.set_epoch(epoch)
        self.memory.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.current)

    def __iter__(self) -> Iterator[list[int]]:
        for new, old in zip(self.current, self.memory):
            half_new, half_old = len(new) // 2, len(old) // 2
            old = [self.split + i for i in old]
            yield new[:half_new] + old[:half_old] + new[half_new:] + old[half_old:]
