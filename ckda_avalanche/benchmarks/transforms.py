"""Train and test image transforms for VI-ReID (torchvision.transforms.v2).

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §6) trains with: resize, horizontal flip, ImageNet
normalisation and random erasing (p = 0.5); infrared images additionally get, chosen at random, either a colour
jitter (brightness 0.3, contrast 0.3) or a Gaussian blur (kernel 21, sigma in [0.1, 3]) at 256x128; at other sizes
the blur is scaled with the image height (`AugmentConfig.blur_reference_height`). Testing only resizes and
normalises.

Because part of the pipeline depends on the image's modality, the transforms built here are
:class:`ModalityAwareTransform` objects called as ``transform(image, modality)``. The stream's dataset
(``reid_dataset.py``) passes each sample's modality; Avalanche's transform groups swap the whole object between
``train`` and ``eval``.

Pipeline order (train): ``ToImage -> Resize -> [infrared only: RandomChoice(ColorJitter, GaussianBlur)] ->
RandomHorizontalFlip -> ToDtype(float32, scale) -> Normalize -> RandomErasing -> ToPureTensor``. The infrared
augmentation runs on the resized uint8 image so its cost and the blur's reach do not depend on the file's size.
Randomness comes from torch's global generator (seeded per DataLoader worker by PyTorch).

Batched counterparts. The transforms built here also carry ``batched``: the same pipeline after the resize,
applied to a whole uint8 batch with per-sample random draws (`batch_transforms.py`), and ``img_size`` /
``interpolation``, the resize they start with. A dataset whose train and test transforms share that resize decodes
and resizes each image once (`image_store.decode_resized`, the same ``ToImage -> Resize`` as here) and lets
`batch_loader.ReIDLoader` apply ``batched`` per batch; indexing such a dataset one item at a time still applies this
per-image transform (its resize is then a no-op), which is the reference the batched version is tested against.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision.transforms import InterpolationMode, v2

from .augment_config import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig
from .batch_transforms import BatchEvalTransform, BatchTrainAugment
from .sample import INFRARED, VISIBLE

_INTERPOLATIONS = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}


class ModalityAwareTransform:
    """An image transform whose middle stage depends on the modality: ``transform(image, modality) -> Tensor``.

    ``common_pre`` runs on every image, then ``infrared_only`` on infrared images (modality 1) only, then
    ``common_post`` on every image. ``image`` may be a PIL image or a uint8 ``(3, H, W)`` tensor; the output is a
    plain float ``(3, H, W)`` tensor.

    Optional: ``batched(images, modality)``, the same transform for a uint8 ``(B, 3, H, W)`` batch already resized
    by ``common_pre``'s resize, which is ``img_size`` with ``interpolation`` (set by `build_train_transform` and
    `build_eval_transform`; None for a transform without a batched form).
    """

    def __init__(
        self,
        *,
        common_pre: Callable[[Any], Any],
        common_post: Callable[[Any], torch.Tensor],
        infrared_only: Callable[[Any], Any] | None = None,
        batched: Callable[..., torch.Tensor] | None = None,
        img_size: tuple[int, int] | None = None,
        interpolation: str | None = None,
    ) -> None:
        if batched is not None and (img_size is None or interpolation is None):
            raise ValueError("ModalityAwareTransform: a batched form needs the img_size and interpolation of the "
                             "resize it assumes")
        self.common_pre = common_pre
        self.infrared_only = infrared_only
        self.common_post = common_post
        self.batched = batched
        self.img_size = None if img_size is None else (int(img_size[0]), int(img_size[1]))
        self.interpolation = interpolation

    @property
    def geometry(self) -> tuple[tuple[int, int], str] | None:
        """``(img_size, interpolation)`` of the resize the batched form assumes; None without a batched form."""
        if self.batched is None or self.img_size is None or self.interpolation is None:
            return None
        return self.img_size, self.interpolation

    def __call__(self, image: Any, modality: int) -> torch.Tensor:
        if modality not in (VISIBLE, INFRARED):
            raise ValueError(f"modality: expected {VISIBLE} (visible) or {INFRARED} (infrared), got {modality!r}")
        out = self.common_pre(image)
        if modality == INFRARED and self.infrared_only is not None:
            out = self.infrared_only(out)
        return self.common_post(out)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(common_pre={self.common_pre!r}, infrared_only={self.infrared_only!r}, "
            f"common_post={self.common_post!r})"
        )


def _check_img_size(img_size: tuple[int, int]) -> tuple[int, int]:
    if len(img_size) != 2 or any(int(s) != s or s < 1 for s in img_size):
        raise ValueError(f"img_size: expected (height, width) positive integers, got {img_size!r}")
    return int(img_size[0]), int(img_size[1])


def _resize_stage(img_size: tuple[int, int], interpolation: str) -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.Resize(img_size, interpolation=_INTERPOLATIONS[interpolation], antialias=True)])


def resize_image(image: Any, img_size: tuple[int, int], interpolation: str = "bicubic") -> torch.Tensor:
    """The resize stage of both transforms (``ToImage -> Resize``, antialiased) as a plain contiguous uint8
    ``(3, H, W)`` tensor: what the image cache stores and the batched transforms start from."""
    height, width = _check_img_size(img_size)
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}")
    out = _resize_stage((height, width), interpolation)(image)
    return out.as_subclass(torch.Tensor).contiguous()


def _normalise_stage() -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)]


def scaled_blur(config: AugmentConfig, height: int) -> tuple[int, tuple[float, float]]:
    """(kernel, sigma range) of the infrared Gaussian blur at image ``height`` (see `blur_reference_height`)."""
    if config.blur_reference_height is None or height == config.blur_reference_height:
        return config.blur_kernel, config.blur_sigma
    factor = height / config.blur_reference_height
    kernel = max(1, 2 * round((config.blur_kernel * factor - 1) / 2) + 1)
    low, high = config.blur_sigma
    return kernel, (low * factor, high * factor)


def build_train_transform(
    img_size: tuple[int, int], *, config: AugmentConfig | None = None
) -> ModalityAwareTransform:
    """CKDA's training transform (docs/method.md §6) for images resized to ``img_size = (height, width)``."""
    height, width = _check_img_size(img_size)
    cfg = AugmentConfig() if config is None else config
    blur_kernel, blur_sigma = scaled_blur(cfg, height)
    # torchvision's blur pads with reflection, which needs padding < size on both sides.
    if blur_kernel // 2 >= min(height, width):
        raise ValueError(
            f"AugmentConfig.blur_kernel={cfg.blur_kernel} (scaled to {blur_kernel}) is too large for img_size "
            f"{img_size}: expected a kernel // 2 < {min(height, width)}"
        )
    infrared = v2.RandomApply(
        [
            v2.RandomChoice(
                [
                    v2.ColorJitter(brightness=cfg.jitter_brightness, contrast=cfg.jitter_contrast),
                    v2.GaussianBlur(kernel_size=blur_kernel, sigma=blur_sigma),
                ]
            )
        ],
        p=cfg.infrared_aug_p,
    )
    post = v2.Compose(
        [
            v2.RandomHorizontalFlip(p=cfg.flip_p),
            *_normalise_stage(),
            v2.RandomErasing(p=cfg.erase_p),
            v2.ToPureTensor(),
        ]
    )
    batched = BatchTrainAugment((height, width), config=cfg, blur_kernel=blur_kernel, blur_sigma=blur_sigma)
    return ModalityAwareTransform(
        common_pre=_resize_stage((height, width), cfg.interpolation), infrared_only=infrared, common_post=post,
        batched=batched, img_size=(height, width), interpolation=cfg.interpolation,
    )


def build_eval_transform(img_size: tuple[int, int], *, interpolation: str = "bicubic") -> ModalityAwareTransform:
    """Deterministic test transform: resize to ``img_size = (height, width)`` and ImageNet-normalise."""
    height, width = _check_img_size(img_size)
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}")
    post = v2.Compose([*_normalise_stage(), v2.ToPureTensor()])
    return ModalityAwareTransform(common_pre=_resize_stage((height, width), interpolation), common_post=post,
                                  batched=BatchEvalTransform((height, width)), img_size=(height, width),
                                  interpolation=interpolation)
