"""CKDA's train and test transforms applied to a whole batch at once, with every random draw per sample.

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §6) augments each training image independently: infrared
images get, with probability `AugmentConfig.infrared_aug_p`, either a colour jitter (brightness, contrast, in a
random order as ``ColorJitter`` applies them) or a Gaussian blur (kernel and sigma scaled with the image height),
then every image is flipped with probability ``flip_p``, ImageNet-normalised and randomly erased with probability
``erase_p``. The per-image reference is `transforms.build_train_transform`; `BatchTrainAugment` draws the same
parameters, from the same distributions, once per sample, and applies them with the vectorised kernels of
`batch_ops.py` to a uint8 ``(B, 3, H, W)`` batch already resized to the training resolution (the image cache and
the readers' decode stage do the resize, once per image).

Randomness: all parameters are drawn on the CPU from ``generator`` (default: torch's global generator), a fixed
number of draws per batch, so a batch gets the same augmentation whichever device it is applied on and however many
DataLoader workers decoded it (the batch is augmented in the main process; see `batch_loader.py`).

`BatchEvalTransform` is the test transform (normalisation only; the resize is done when decoding).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from . import batch_ops
from .augment_config import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig
from .sample import INFRARED

__all__ = ["BatchEvalTransform", "BatchTrainAugment", "TrainAugmentParams"]

ERASE_SCALE: tuple[float, float] = (0.02, 0.33)
"""Random erasing area range, as a fraction of the image (torchvision's ``RandomErasing`` default)."""
ERASE_RATIO: tuple[float, float] = (0.3, 3.3)
"""Random erasing aspect-ratio range (torchvision's default); drawn log-uniformly."""
ERASE_ATTEMPTS: int = 10
"""Rectangles tried per image before giving up (torchvision draws up to 10 and erases nothing if none fits)."""


class TrainAugmentParams(NamedTuple):
    """Per-sample parameters of one batch of `BatchTrainAugment` (all CPU tensors of leading size B)."""

    infrared_aug: torch.Tensor
    """(B,) bool: the image gets the infrared jitter-or-blur (infrared images only)."""
    jitter: torch.Tensor
    """(B,) bool: that augmentation is the colour jitter (else the blur)."""
    brightness: torch.Tensor
    """(B,) float64 brightness factors."""
    contrast: torch.Tensor
    """(B,) float64 contrast factors."""
    brightness_first: torch.Tensor
    """(B,) bool: brightness is adjusted before contrast (``ColorJitter``'s random order)."""
    sigma: torch.Tensor
    """(B,) float64 blur sigmas (already scaled to the image height)."""
    flip: torch.Tensor
    """(B,) bool horizontal flips."""
    erase: torch.Tensor
    """(B,) bool: a rectangle is erased."""
    boxes: torch.Tensor
    """(B, 4) long erased rectangles ``(top, left, height, width)``."""


def _check_batch(images: torch.Tensor, img_size: tuple[int, int], name: str) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise TypeError(f"{name}: expected a uint8 (B, 3, H, W) batch, got {images.dtype} of shape "
                        f"{tuple(images.shape)}")
    if tuple(images.shape[-2:]) != tuple(img_size):
        raise ValueError(f"{name}: expected images already resized to {tuple(img_size)} (the decode stage resizes), "
                         f"got {tuple(images.shape[-2:])}")


class _Normalise:
    """ImageNet mean / std as float32 tensors."""

    def __init__(self) -> None:
        self.mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
        self.std = torch.tensor(IMAGENET_STD, dtype=torch.float32)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return batch_ops.normalize(images, self.mean, self.std)


class BatchEvalTransform:
    """Test transform on a resized uint8 batch: ``ToDtype(float32, scale) + Normalize(ImageNet)``."""

    def __init__(self, img_size: tuple[int, int]) -> None:
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self._normalise = _Normalise()

    def __call__(self, images: torch.Tensor, modality: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(images, self.img_size, type(self).__name__)
        return self._normalise(images)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(img_size={self.img_size})"


class BatchTrainAugment:
    """CKDA's training augmentation on a resized uint8 batch, every random choice drawn per sample.

    ``config`` is the `AugmentConfig`; ``blur_kernel`` / ``blur_sigma`` are the already height-scaled values
    (`transforms.scaled_blur`). ``__call__(images, modality)`` = ``apply(images, sample(modality))``.
    """

    def __init__(self, img_size: tuple[int, int], *, config: AugmentConfig, blur_kernel: int,
                 blur_sigma: tuple[float, float]) -> None:
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.config = config
        self.blur_kernel = int(blur_kernel)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self._normalise = _Normalise()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(img_size={self.img_size}, blur_kernel={self.blur_kernel}, "
                f"blur_sigma={self.blur_sigma}, config={self.config!r})")

    def __call__(self, images: torch.Tensor, modality: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(images, self.sample(modality, generator=generator))

    # ------------------------------------------------------------------ parameters
    def sample(self, modality: torch.Tensor, *, generator: torch.Generator | None = None) -> TrainAugmentParams:
        """Per-sample parameters for a batch with these modalities: ``10 + 2 * ERASE_ATTEMPTS`` uniform draws per
        sample, whatever the outcome, so the random stream does not depend on the images."""
        cfg = self.config
        modality = modality.detach().to("cpu").long().view(-1)
        n = modality.numel()
        u = torch.rand(n, 10, dtype=torch.float64, generator=generator)
        attempts = torch.rand(n, 2, ERASE_ATTEMPTS, dtype=torch.float64, generator=generator)
        b_low, b_high = max(0.0, 1.0 - cfg.jitter_brightness), 1.0 + cfg.jitter_brightness
        c_low, c_high = max(0.0, 1.0 - cfg.jitter_contrast), 1.0 + cfg.jitter_contrast
        s_low, s_high = self.blur_sigma
        boxes, fits = self._erase_boxes(attempts, u[:, 8], u[:, 9])
        return TrainAugmentParams(
            infrared_aug=(modality == INFRARED) & (u[:, 0] < cfg.infrared_aug_p),
            jitter=u[:, 1] < 0.5,
            brightness=b_low + (b_high - b_low) * u[:, 2],
            contrast=c_low + (c_high - c_low) * u[:, 3],
            brightness_first=u[:, 4] < 0.5,
            sigma=s_low + (s_high - s_low) * u[:, 5],
            flip=u[:, 6] < cfg.flip_p,
            erase=(u[:, 7] < cfg.erase_p) & fits,
            boxes=boxes,
        )

    def _erase_boxes(self, attempts: torch.Tensor, row_u: torch.Tensor,
                     col_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 4) rectangles ``(i, j, h, w)`` and (B,) whether one of the attempts fits, by torchvision's rule: the
        first of `ERASE_ATTEMPTS` (area, log-aspect) draws whose rounded height and width are smaller than the
        image's, placed uniformly. (NumPy float64: a few dozen operations on tiny arrays.)"""
        height, width = self.img_size
        draws = attempts.numpy()
        scale = ERASE_SCALE[0] + (ERASE_SCALE[1] - ERASE_SCALE[0]) * draws[:, 0]
        log_low, log_high = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
        ratio = np.exp(log_low + (log_high - log_low) * draws[:, 1])
        area = height * width * scale
        h = np.round(np.sqrt(area * ratio)).astype(np.int64)  # round half to even, as Python's round
        w = np.round(np.sqrt(area / ratio)).astype(np.int64)
        valid = (h < height) & (w < width)
        fits = valid.any(axis=1)
        first = valid.argmax(axis=1)[:, None]
        h = np.where(fits, np.take_along_axis(h, first, axis=1)[:, 0], 0)
        w = np.where(fits, np.take_along_axis(w, first, axis=1)[:, 0], 0)
        i = np.minimum(np.floor(row_u.numpy() * (height - h + 1)).astype(np.int64), height - h)
        j = np.minimum(np.floor(col_u.numpy() * (width - w + 1)).astype(np.int64), width - w)
        return torch.from_numpy(np.stack([i, j, h, w], axis=1)), torch.from_numpy(fits)

    # ------------------------------------------------------------------ application
    def apply(self, images: torch.Tensor, params: TrainAugmentParams) -> torch.Tensor:
        """The augmented, normalised float32 batch for given per-sample parameters (pipeline order of the per-image
        transform: infrared jitter-or-blur on uint8, flip, normalise, erase)."""
        _check_batch(images, self.img_size, type(self).__name__)
        if params.flip.shape != (images.shape[0],):
            raise ValueError(f"{type(self).__name__}: parameters for {params.flip.shape[0]} images, batch of "
                             f"{images.shape[0]}")
        x = images
        if bool(params.infrared_aug.any()):
            x = x.clone()
            jitter = torch.nonzero(params.infrared_aug & params.jitter).view(-1)
            blur = torch.nonzero(params.infrared_aug & ~params.jitter).view(-1)
            if jitter.numel():
                x[jitter.to(x.device)] = self._jitter(x[jitter.to(x.device)], params, jitter)
            if blur.numel() and self.blur_kernel > 1:
                x[blur.to(x.device)] = batch_ops.gaussian_blur(x[blur.to(x.device)], self.blur_kernel,
                                                               params.sigma[blur])
        x = batch_ops.flip(x, params.flip)
        x = self._normalise(x)
        return batch_ops.erase(x, params.boxes, params.erase, inplace=True)  # x is this call's own tensor

    def _jitter(self, images: torch.Tensor, params: TrainAugmentParams, index: torch.Tensor) -> torch.Tensor:
        """``ColorJitter(brightness, contrast)`` per sample, each in its own random order."""
        cfg = self.config
        out = images.clone()
        first = params.brightness_first[index]
        for brightness_first in (True, False):
            rows = torch.nonzero(first == brightness_first).view(-1)
            if rows.numel() == 0:
                continue
            y = images[rows.to(images.device)]
            steps = ["brightness", "contrast"] if brightness_first else ["contrast", "brightness"]
            for step in steps:
                if step == "brightness" and cfg.jitter_brightness > 0:
                    y = batch_ops.adjust_brightness(y, params.brightness[index[rows]])
                elif step == "contrast" and cfg.jitter_contrast > 0:
                    y = batch_ops.adjust_contrast(y, params.contrast[index[rows]])
            out[rows.to(images.device)] = y
        return out
