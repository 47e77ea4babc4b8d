"""`WeightMergePlugin`: CKDA's stage-level weight EMA at the end of each session.

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §5.1): theta_s = lam * theta_{s-1} + (1 - lam) *
theta*_s for every parameter and floating-point buffer whose shape matches (prompts, BN statistics, modality
embedding, ViT); classifiers are excluded by name (they are re-created per session). lam = 0.7 by default; 0 turns
merging off. Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) keep the new value.

theta_{s-1} is the model as it was when the session started (the previous session's merged weights). With a shared
`TeacherPlugin` those are the teacher's weights, so no extra copy is kept; without one the plugin snapshots the
model at ``before_training_exp`` and drops the snapshot after merging. The first session has no previous merged
model and is not merged. Must come BEFORE `TeacherPlugin` and `CKAPlugin` in the plugin list.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ckda_avalanche.plugins.roles import WeightMergeRole
from ckda_avalanche.plugins.teacher import TeacherPlugin

__all__ = ["WeightMergePlugin", "merge_state_into"]


def merge_state_into(model: nn.Module, previous: Mapping[str, torch.Tensor], *, lam: float,
                     exclude: tuple[str, ...] = ("head.classifier",)) -> list[str]:
    """In place: every floating tensor of ``model.state_dict()`` whose name is in ``previous`` with the same shape
    and does not start with an ``exclude`` prefix becomes ``lam * previous + (1 - lam) * current``.

    Returns the merged names (so callers and tests can see exactly what was merged).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"merge_state_into: lam must be in [0, 1], got {lam}")
    merged: list[str] = []
    with torch.no_grad():
        for name, current in model.state_dict(keep_vars=False).items():
            if any(name == p or name.startswith(p + ".") for p in exclude):
                continue
            old = previous.get(name)
            if old is None or old.shape != current.shape or not current.is_floating_point():
                continue
            current.mul_(1.0 - lam).add_(old.to(device=current.device, dtype=current.dtype), alpha=lam)
            merged.append(name)
    return merged


class WeightMergePlugin(WeightMergeRole, SupervisedPlugin):
    """Merges the trained model with the previous session's merged weights at the end of every session."""

    def __init__(self, *, lam: float = 0.7, teacher: TeacherPlugin | None = None,
                 exclude: tuple[str, ...] = ("head.classifier",)) -> None:
        super().__init__()
        if not 0.0 <= lam < 1.0:
            raise ValueError(f"WeightMergePlugin.lam: expected a value in [0, 1), got {lam}")
        self.lam = lam
        """Weight of the previous merged model (0: no merging)."""
        self.teacher = teacher
        """Shared teacher whose weights are theta_{s-1} (avoids a snapshot), or None."""
        self.exclude = exclude
        """State-dict name prefixes never merged (the per-session classifier)."""
        self.sessions_seen: int = 0
        """Training sessions finished so far."""
        self.pending: bool = False
        """True between ``before_training_exp`` and this plugin's ``after_training_exp``."""
        self.last_merged: list[str] = []
        """Names merged at the end of the last session."""
        self._snapshot: dict[str, torch.Tensor] | None = None

    def _use_teacher(self) -> bool:
        return self.teacher is not None and self.teacher.active

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.pending = True
        self._snapshot = None
        if self.lam > 0 and self.sessions_seen > 0 and not self._use_teacher():
            self._snapshot = {k: v.detach().clone() for k, v in strategy.model.state_dict().items()
                              if not any(k == p or k.startswith(p + ".") for p in self.exclude)}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.last_merged = []
        if self.lam > 0 and self.sessions_seen > 0:
            if self._use_teacher():
                if not self.teacher.refreshed:
                    previous = self.teacher.model.state_dict()
                else:
                    raise RuntimeError("WeightMergePlugin ran after TeacherPlugin at the end of the session: put "
                                       "WeightMergePlugin first in the plugin list")
            elif self._snapshot is not None:
                previous = self._snapshot
            else:
                raise RuntimeError("WeightMergePlugin: no previous weights to merge with (before_training_exp did "
                                   "not run for this session)")
            self.last_merged = merge_state_into(strategy.model, previous, lam=self.lam, exclude=self.exclude)
        self._snapshot = None
        self.sessions_seen += 1
        self.pending = False

    def state_dict(self) -> dict[str, Any]:
        return {"sessions_seen": self.sessions_seen, "lam": self.lam}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "sessions_seen" not in state:
            raise KeyError("WeightMergePlugin.load_state_dict: missing entry 'sessions_seen'")
        self.sessions_seen = int(state["sessions_seen"])

    def memory_report(self) -> dict[str, int]:
        snapshot = 0 if self._snapshot is None else sum(t.numel() * t.element_size() for t in self._snapshot.values())
        return {"previous_weights": snapshot}
