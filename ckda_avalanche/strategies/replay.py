"""`Replay`: bounded exemplar replay (images per old identity and modality) with the usual ReID losses on replayed
samples; the classifier covers every identity seen so far. See `plugins/replay.py` for memory and selection."""
from __future__ import annotations

from avalanche.core import BasePlugin
from ckda_avalanche.plugins.replay import ReIDReplayPlugin, ReplayConfig
from ckda_avalanche.strategies.base import ReIDTemplate
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["Replay", "seen_label_range"]


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
        self.replay = ReIDReplayPlugin(config=method)
        return [self.replay]

    def classifier_labels(self) -> tuple[int, int]:
        """The classifier covers every identity seen so far."""
        return seen_label_range(self)
