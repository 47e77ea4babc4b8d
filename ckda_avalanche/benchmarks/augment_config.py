"""The settings of the training augmentation (`AugmentConfig`) and the ImageNet normalisation constants.

Their own module so that the per-image transforms (`transforms.py`) and the batched ones (`batch_transforms.py`)
both read them without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel mean of ImageNet (RGB, [0, 1] scale)."""
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel standard deviation of ImageNet (RGB, [0, 1] scale)."""

INTERPOLATION_NAMES: tuple[str, ...] = ("nearest", "bilinear", "bicubic")
"""Resize interpolations `AugmentConfig.interpolation` accepts."""


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation of CKDA (docs/method.md §6); defaults are the published setting."""

    flip_p: float = 0.5
    """Probability of a horizontal flip."""
    erase_p: float = 0.5
    """Probability of random erasing (torchvision defaults: area 2-33 %, aspect 0.3-3.3, erased to 0)."""
    infrared_aug_p: float = 1.0
    """Probability that an infrared image gets the colour-jitter-or-blur augmentation (1.0 = always, published)."""
    jitter_brightness: float = 0.3
    """ColorJitter brightness factor for infrared images."""
    jitter_contrast: float = 0.3
    """ColorJitter contrast factor for infrared images."""
    blur_kernel: int = 21
    """GaussianBlur kernel size (odd) for infrared images; must be smaller than twice the image's shorter side."""
    blur_sigma: tuple[float, float] = (0.1, 3.0)
    """Range the GaussianBlur sigma is drawn from, uniformly."""
    blur_reference_height: int | None = 256
    """Image height at which `blur_kernel` and `blur_sigma` are given (the published 256x128 input). Other heights
    scale both by ``height / blur_reference_height`` so the blur covers the same share of the person (kernel 21 at
    256 is kernel 3 at 32). None applies them unscaled."""
    interpolation: str = "bicubic"
    """Resize interpolation: "nearest", "bilinear" or "bicubic"."""

    def __post_init__(self) -> None:
        for name in ("flip_p", "erase_p", "infrared_aug_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentConfig.{name}: expected a probability in [0, 1], got {value}")
        for name in ("jitter_brightness", "jitter_contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"AugmentConfig.{name}: expected >= 0, got {getattr(self, name)}")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"AugmentConfig.blur_kernel: expected a positive odd integer, got {self.blur_kernel}")
        low, high = self.blur_sigma
        if not 0 < low <= high:
            raise ValueError(f"AugmentConfig.blur_sigma: expected 0 < low <= high, got {self.blur_sigma}")
        if self.blur_reference_height is not None and self.blur_reference_height < 1:
            raise ValueError(f"AugmentConfig.blur_reference_height: expected a positive height or None, got "
                             f"{self.blur_reference_height}")
        if self.interpolation not in INTERPOLATION_NAMES:
            raise ValueError(
                f"AugmentConfig.interpolation: expected one of {sorted(INTERPOLATION_NAMES)}, got {self.interpolation!r}"
            )
