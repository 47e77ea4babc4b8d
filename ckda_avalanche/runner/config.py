"""Run configuration: one typed dataclass for a leaderboard run, and its named presets (``cpu``, ``paper``, ``test``).

A preset is a named instance of `RunConfig`; ``--config file.yaml|json`` overrides any field of it (nested
mappings for ``train``, and ``method_overrides: {ckda: {beta: 0.0}}`` for a method's own config dataclass).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ckda_avalanche.benchmarks.reader_options import ReaderOptions
from ckda_avalanche.benchmarks.streams import DEFAULT_ORDER
from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.strategies.config import TrainConfig



@dataclass(frozen=True)
class RunConfig:
    """Everything a leaderboard run needs besides the method names, seeds, data root and output folder."""

    model: str = "cpu"
    """Registered model name or preset alias (``ckda_avalanche.models.list_models(True)``)."""
    pretrained: str | None = None
    """Local timm/ImageNet ViT checkpoint (.pth/.safetensors/.npz) loaded into the backbone; None = random init."""
    datasets: tuple[str, ...] = DEFAULT_ORDER
    """Session order (dataset names: regdb, sysu, llcm, vcm)."""
    protocol: str = "paper"
    """Evaluation protocol: ``paper`` (published single setting) or ``full`` (all trials and directions)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Per-session optimisation (shared by every method)."""
    eval_mb_size: int = 128
    """Batch size of feature extraction."""
    synthetic_scale: float = 1.0
    """Identity-count multiplier of the generated synthetic datasets (``--data synthetic``)."""
    synthetic_seed: int = 0
    """Seed of the generated synthetic datasets."""
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-method overrides of that method's config dataclass, e.g. ``{"ckda": {"beta": 0.0}}``."""
    readers: ReaderOptions = field(default_factory=ReaderOptions)
    """Dataset reader settings (RegDB trial, HITSZ-VCM tracklet feature, ...); defaults: the published setting."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (written to ``config.json``)."""
        return dataclasses.asdict(self)


PAPER = RunConfig(model="paper", train=TrainConfig(epoch_length="images"), eval_mb_size=128)
"""Published setting: ViT-B/16 at 256x128 (stride 12), 50 epochs per session of floor(max(#visible, #infrared) / 32)
+ 1 batches (the published code bases' identity sampler), 8 ids x 4 images x 2 modalities."""

CPU = RunConfig(
    model="cpu-faithful",
    pretrained="synthetic-cpu-faithful",
    train=TrainConfig(epochs=12, warmup_epochs=1, lr=3e-3, num_identities=8, num_instances=2, amp="off"),
    eval_mb_size=256,
)
"""The default synthetic leaderboard on 2 CPU cores (about 5 minutes for all nine methods, one seed, with Ray): the
published ViT structure at 1/8 of the image side (32x16, overlapping 4x4 patches at stride 3, a 16x8 prompt grid;
3 blocks, 128 wide) started from the shipped synthetic pretraining (a stand-in for ImageNet, `ckda pretrain`).
Measured choices, each the same for every method (docs/calibration.md):
- 12 identity-epochs per session (8 ids x 2 images x 2 modalities per batch, 96 iterations): what the 15-minute
  budget of the first command allows on a float32-only machine;
- lr 3e-3 (backbone 0.5x) instead of the published 3e-4: with 96 iterations, 3e-4 leaves RegDB at 25 mAP after its
  session, 1e-3 at 51, 3e-3 at 56;
- float32 (``amp="off"``): at this width bf16 autocast is slower even on AMX CPUs (87 vs 65 ms per step), and
  float32 gives the same numbers on every machine;
- equal budgets (``equal_iterations=True``): every method trains the same optimiser steps per session; Replay mixes
  a memory batch into each batch (Avalanche's ReplayPlugin convention) with a memory sized for the synthetic stream
  (``ReplayConfig.memory_size=None``); Joint alone, the upper bound, passes over its whole union each epoch.
  ``train: {equal_iterations: false}`` with ``method_overrides: {replay: {mix_into_batch: false, memory_size:
  2000}}`` restores the earlier budget (Joint and Replay train over their whole data each epoch)."""

TEST = RunConfig(
    model="test",
    train=TrainConfig(epochs=1, warmup_epochs=0, num_identities=4, num_instances=2),
    eval_mb_size=64,
    synthetic_scale=0.15,
)
"""Seconds-sized runs for the test suite (2-block micro ViT at 64x32, tiny synthetic data)."""

RUN_PRESETS: dict[str, RunConfig] = {"cpu": CPU, "paper": PAPER, "test": TEST}
"""Named run presets."""


def get_preset(name: str) -> RunConfig:
    """The preset called ``name``; a clear error listing the choices otherwise."""
    try:
        return RUN_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(RUN_PRESETS)}") from None
