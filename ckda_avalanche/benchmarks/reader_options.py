"""Typed options of the four dataset readers, as a run configures them (``readers:`` in a ``ckda run --config`` file).

Defaults are the published single setting (the benchmark protocol), so a run that sets nothing reads the datasets
as the published code does:

- RegDB: ``trial`` 1 (of the ten index trials);
- SYSU-MM01: ``search`` "all", ``shot`` 1 (single-shot), gallery ``trial`` 0 (seed 0);
- LLCM: gallery ``trial`` 0; ``max_train_label`` None (every training identity; the published code kept only labels
  < 500, offered as CKDA's ``quirk_llcm_max_train_label_500`` and here as ``max_train_label: 500``);
- HITSZ-VCM: tracklets of at least ``min_tracklet_len`` 12 frames, ``frames_per_tracklet`` 3 random training frames
  per tracklet (drawn once per run with ``seed`` 0, when the dataset is read), ``tracklet_feature`` "frame" (each
  test tracklet represented by its middle frame; "mean": the mean feature over all its frames), ``camera_filter``
  False (no camera filtering, as the published code scores HITSZ-VCM).

Each value is checked when the configuration is read (one line naming the field); `ReaderOptions.for_stream` turns
them into the ``reader_options`` of `streams.vi_lreid_benchmark`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RegDBOptions", "SYSUOptions", "LLCMOptions", "VCMOptions", "ReaderOptions"]


@dataclass(frozen=True)
class RegDBOptions:
    """RegDB reader settings."""

    trial: int = 1
    """Index trial 1..10 (``idx/*_<trial>.txt``)."""

    def __post_init__(self) -> None:
        if not 1 <= self.trial <= 10:
            raise ValueError(f"RegDBOptions.trial: expected 1..10, got {self.trial}")


@dataclass(frozen=True)
class SYSUOptions:
    """SYSU-MM01 reader settings."""

    search: str = "all"
    """``all`` (visible cameras 1, 2, 4, 5) or ``indoor`` (1, 2)."""
    shot: int = 1
    """Gallery images per (identity, camera): 1 (single-shot) or 10 (multi-shot)."""
    trial: int = 0
    """Seed of the gallery draw."""

    def __post_init__(self) -> None:
        if self.search not in ("all", "indoor"):
            raise ValueError(f"SYSUOptions.search: expected 'all' or 'indoor', got {self.search!r}")
        if self.shot not in (1, 10):
            raise ValueError(f"SYSUOptions.shot: expected 1 or 10, got {self.shot}")
        if self.trial < 0:
            raise ValueError(f"SYSUOptions.trial: expected >= 0, got {self.trial}")


@dataclass(frozen=True)
class LLCMOptions:
    """LLCM reader settings."""

    trial: int = 0
    """Seed of the gallery draw."""
    max_train_label: int | None = None
    """Keep only training labels below this (the published code: 500); None keeps every training identity."""

    def __post_init__(self) -> None:
        if self.trial < 0:
            raise ValueError(f"LLCMOptions.trial: expected >= 0, got {self.trial}")
        if self.max_train_label is not None and self.max_train_label < 1:
            raise ValueError(f"LLCMOptions.max_train_label: expected >= 1 or null, got {self.max_train_label}")


@dataclass(frozen=True)
class VCMOptions:
    """HITSZ-VCM reader settings."""

    frames_per_tracklet: int = 3
    """Training frames drawn per tracklet (distinct, kept in frame order)."""
    min_tracklet_len: int = 12
    """Tracklets shorter than this are skipped in train and test."""
    tracklet_feature: str = "frame"
    """Test tracklet representation: ``frame`` (its middle frame) or ``mean`` (mean feature over its frames)."""
    seed: int = 0
    """Seed of the training-frame draw."""
    camera_filter: bool = False
    """True: Market-style removal of same-identity same-camera gallery items; False: none (published)."""

    def __post_init__(self) -> None:
        if self.tracklet_feature not in ("frame", "mean"):
            raise ValueError(f"VCMOptions.tracklet_feature: expected 'frame' or 'mean', got "
                             f"{self.tracklet_feature!r}")
        if not 1 <= self.frames_per_tracklet <= self.min_tracklet_len:
            raise ValueError(f"VCMOptions.frames_per_tracklet: expected 1..min_tracklet_len "
                             f"({self.min_tracklet_len}), got {self.frames_per_tracklet}")
        if self.seed < 0:
            raise ValueError(f"VCMOptions.seed: expected >= 0, got {self.seed}")


@dataclass(frozen=True)
class ReaderOptions:
    """Settings of every reader (only those of the datasets in the stream are used)."""

    regdb: RegDBOptions = field(default_factory=RegDBOptions)
    """RegDB."""
    sysu: SYSUOptions = field(default_factory=SYSUOptions)
    """SYSU-MM01."""
    llcm: LLCMOptions = field(default_factory=LLCMOptions)
    """LLCM."""
    vcm: VCMOptions = field(default_factory=VCMOptions)
    """HITSZ-VCM."""

    def for_stream(self, datasets: Sequence[str],
                   extra: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """Keyword arguments per reader for the datasets of ``datasets``; ``extra`` (a method's data quirks, e.g.
        ``{"llcm": {"max_train_label": 500}}``) is applied on top and must not contradict a value set here."""
        out = {name: dataclasses.asdict(getattr(self, name)) for name in datasets}
        for name, options in (extra or {}).items():
            if name not in out:
                continue
            default = dataclasses.asdict(getattr(ReaderOptions(), name))
            for key, value in options.items():
                if out[name][key] != default[key] and out[name][key] != value:
                    raise ValueError(f"readers.{name}.{key}: {out[name][key]!r} contradicts the method's data "
                                     f"quirk ({key}={value!r}); set one of them")
                out[name][key] = value
        return out
