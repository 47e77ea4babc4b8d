"""Training hyperparameters shared by every ReID strategy (CKDA's published optimisation, docs/method.md §6)."""
from __future__ import annotations

from dataclasses import dataclass

from ckda_avalanche.benchmarks.sampler import EPOCH_LENGTHS

__all__ = ["TrainConfig", "AMP_MODES"]

AMP_MODES = ("auto", "bf16", "fp16", "off")
"""Accepted values of `TrainConfig.amp`."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule, batch and precision settings of one session (defaults: the published CKDA setting)."""

    lr: float = 3e-4
    """AdamW base learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay, on every trainable parameter."""
    backbone_lr_mult: float = 0.5
    """Learning-rate multiplier of the ViT blocks and the patch embedding."""
    warmup_epochs: int = 3
    """Linear warm-up length in epochs (per-iteration schedule); 0 disables warm-up."""
    warmup_start_factor: float = 0.01
    """Learning-rate factor at the first warm-up iteration."""
    min_lr_factor: float = 0.01
    """Floor of the cosine decay, as a factor of the base learning rate."""
    epochs: int = 50
    """Training epochs per session."""
    num_identities: int = 8
    """P: identities per batch."""
    num_instances: int = 4
    """K: images per identity and modality in a batch (batch = 2 * P * K)."""
    epoch_length: str = "identities"
    """What one epoch is (`ckda_avalanche.benchmarks.sampler.batches_per_epoch_for`): "images" = floor(max(#visible,
    #infrared) / (P K)) + 1 batches, the published code bases' IdentitySampler (AGW; the `paper` preset), or
    "identities" = ceil(#identities / P) batches, one pass over the identities (this field's default, kept for the
    CPU-sized presets and existing configurations)."""
    equal_iterations: bool = True
    """Every method trains the same iterations per session: the epoch length is computed from the current
    session's own training set, even when a method trains on more (Joint's union, Replay's exemplars). False: it is
    computed from the method's whole training set, so those methods train longer."""
    amp: str = "auto"
    """Mixed precision: "auto" (CUDA: bf16 if supported else fp16; CPU: bf16 where supported), "bf16", "fp16"
    (CUDA only, with a gradient scaler) or "off"."""
    seed: int = 0
    """Seed of the identity-balanced sampler (session s uses seed * 1000 + s)."""
    num_workers: int | str = "auto"
    """DataLoader worker processes for training, evaluation and the prototype / old-model passes: a number, or
    "auto": none when the session's images are in the memory cache (decoded once; the batched augmentation runs in
    the training process), else the usable CPUs minus one (1..8) decoding from disk (docs/data_path.md). Workers
    only decode, so results do not depend on this."""
    allow_unpaired_identities: bool = False
    """Leave identities with images in one modality only out of the training batches instead of raising."""
    grad_clip_norm: float = 0.0
    """Clip the gradient norm to this value before each step (0: no clipping; not in the published setting)."""

    def __post_init__(self) -> None:
        for name in ("lr", "backbone_lr_mult", "warmup_start_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name}: expected > 0, got {getattr(self, name)}")
        for name in ("weight_decay", "min_lr_factor", "grad_clip_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("epochs", "num_identities", "num_instances"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}: expected >= 1, got {getattr(self, name)}")
        if self.warmup_epochs < 0:
            raise ValueError(f"TrainConfig.warmup_epochs: expected >= 0, got {self.warmup_epochs}")
        if self.num_workers != "auto" and (isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int)
                                           or self.num_workers < 0):
            raise ValueError(f"TrainConfig.num_workers: expected an integer >= 0 or 'auto', got {self.num_workers!r}")
        if self.epoch_length not in EPOCH_LENGTHS:
            raise ValueError(f"TrainConfig.epoch_length: expected one of {EPOCH_LENGTHS}, got {self.epoch_length!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"TrainConfig.amp: expected one of {AMP_MODES}, got {self.amp!r}")

    @property
    def train_mb_size(self) -> int:
        """Training batch size 2 * P * K (both modalities)."""
        return 2 * self.num_identities * self.num_instances
