"""Per-sample image operations on whole batches: the kernels of the batched augmentation (`batch_transforms.py`).

torchvision's ``transforms.v2`` applied to a ``(B, C, H, W)`` tensor draws ONE set of random parameters for the
whole batch. CKDA's augmentation (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §6) is per image, so these
functions take one parameter per sample (tensors of shape ``(B,)`` or ``(B, 4)``) and apply it with vectorised
tensor operations. Each one mirrors the torchvision kernel of the per-image pipeline (`transforms.py`) step by step,
so with the same parameters the result is the same image:

- `normalize`, `flip`: bit-identical to ``ToDtype(float32, scale=True) + Normalize`` and ``horizontal_flip``;
- `adjust_brightness`, `adjust_contrast`: the same float32 formulas as ``F.adjust_brightness`` /
  ``F.adjust_contrast`` on uint8 (truncation back to uint8 included); they may differ from torchvision by one grey
  level where a per-sample scalar is rounded differently (a fused multiply-add in torchvision's kernel);
- `gaussian_blur`: torchvision's kernel (``softmax(-(x / sigma)^2)`` on ``linspace(+-(k-1) / (2 sqrt 2))``,
  reflection padding, rounding back to uint8), applied as two separable 1-D convolutions with one kernel per sample
  (grouped convolution) instead of one k x k convolution: about k/2 times fewer operations, equal up to float
  rounding (at most one grey level apart);
- `erase`: ``F.erase`` with value 0 on per-sample rectangles;
- `grayscale`: ``F.rgb_to_grayscale`` (ITU-R 601 luminance, truncated to uint8) in all three channels, on the
  masked samples.

All functions accept tensors on any device; parameters may live on the CPU and are moved.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SMALL_KERNEL = 7
"""Blur kernels up to this size are applied as shifted multiply-adds, larger ones as grouped convolutions."""

__all__ = ["adjust_brightness", "adjust_contrast", "erase", "flip", "gaussian_blur", "gaussian_kernels", "normalize"]


def _per_sample(values: torch.Tensor, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``values`` (B,) as a (B, 1, 1, 1) tensor of ``dtype`` on the images' device."""
    if values.shape != (images.shape[0],):
        raise ValueError(f"expected one value per image ({images.shape[0]},), got shape {tuple(values.shape)}")
    return values.to(device=images.device, dtype=dtype).view(-1, 1, 1, 1)


def _check_uint8(images: torch.Tensor, name: str) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError(f"{name}: expected a uint8 (B, C, H, W) tensor, got {images.dtype} of shape "
                        f"{tuple(images.shape)}")


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` -> float32 ``(x / 255 - mean) / std`` (``mean`` / ``std``: (C,) float32)."""
    _check_uint8(images, "normalize")
    mean = mean.to(device=images.device, dtype=torch.float32).view(1, -1, 1, 1)
    std = std.to(device=images.device, dtype=torch.float32).view(1, -1, 1, 1)
    return images.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)


def flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images with ``mask[b]`` true mirrored left-right; the others unchanged (a new tensor)."""
    if mask.shape != (images.shape[0],):
        raise ValueError(f"expected one value per image ({images.shape[0]},), got shape {tuple(mask.shape)}")
    rows = torch.nonzero(mask.to("cpu", torch.bool)).view(-1).to(images.device)
    out = images.clone()
    if rows.numel():
        out[rows] = images[rows].flip(-1)
    return out


def grayscale(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RGB uint8 images with ``mask[b]`` true replaced by their luminance in all three channels (a new tensor when
    any is; ``images`` itself otherwise)."""
    _check_uint8(images, "grayscale")
    if mask.shape != (images.shape[0],):
        raise ValueError(f"expected one value per image ({images.shape[0]},), got shape {tuple(mask.shape)}")
    mask = mask.to(device=images.device, dtype=torch.bool)
    if not mask.any():
        return images
    weights = torch.tensor([0.2989, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    luma = (images[mask].float() * weights).sum(1, keepdim=True).floor_().clamp_(0, 255).to(torch.uint8)
    out = images.clone()
    out[mask] = luma.expand(-1, 3, -1, -1)
    return out


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``F.adjust_brightness`` per sample on uint8: ``uint8(clamp(x * factor[b], 0, 255))`` (truncating)."""
    _check_uint8(images, "adjust_brightness")
    return images.mul(_per_sample(factor, images)).clamp_(0, 255).to(torch.uint8)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``F.adjust_contrast`` per sample on uint8 RGB: blend with the mean of the floored greyscale image."""
    _check_uint8(images, "adjust_contrast")
    if images.shape[1] != 3:
        raise ValueError(f"adjust_contrast: expected 3 channels, got {images.shape[1]}")
    r, g, b = images.unbind(dim=1)
    grey = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_()
    mean = grey.mean(dim=(-2, -1)).view(-1, 1, 1, 1)
    ratio = factor.to(torch.float64)
    scale = _per_sample(ratio, images)
    offset = mean * _per_sample(1.0 - ratio, images)
    return images.mul(scale).add_(offset).clamp_(0, 255).to(torch.uint8)


def gaussian_kernels(kernel_size: int, sigma: torch.Tensor, *, device: torch.device | None = None) -> torch.Tensor:
    """(B, k) normalised 1-D Gaussian kernels, torchvision's formula, one per sigma."""
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    x = torch.linspace(-lim, lim, steps=kernel_size, dtype=torch.float32, device=device)
    sigma = sigma.to(device=device, dtype=torch.float32).view(-1, 1)
    return torch.softmax(x.view(1, -1).div(sigma).pow(2).neg(), dim=1)


def gaussian_blur(images: torch.Tensor, kernel_size: int, sigma: torch.Tensor) -> torch.Tensor:
    """``F.gaussian_blur`` per sample on uint8 with an odd ``kernel_size`` and per-sample ``sigma`` (B,)."""
    _check_uint8(images, "gaussian_blur")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"gaussian_blur: kernel_size must be a positive odd integer, got {kernel_size}")
    if images.shape[0] == 0 or kernel_size == 1:
        return images.clone()
    batch, channels, height, width = images.shape
    pad = kernel_size // 2
    out = F.pad(images.to(torch.float32), [pad, pad, pad, pad], mode="reflect")
    if kernel_size <= SMALL_KERNEL:  # a few shifted multiply-adds beat a grouped convolution's overhead
        weights = gaussian_kernels(kernel_size, sigma, device=images.device).view(batch, 1, 1, 1, kernel_size)
        rows = sum(out[..., :, t:t + width] * weights[..., t] for t in range(kernel_size))
        out = sum(rows[..., t:t + height, :] * weights[..., t] for t in range(kernel_size))
    else:
        kernels = gaussian_kernels(kernel_size, sigma, device=images.device).repeat_interleave(channels, dim=0)
        out = out.reshape(1, batch * channels, height + 2 * pad, width + 2 * pad)
        out = F.conv2d(out, kernels.view(-1, 1, 1, kernel_size), groups=batch * channels)
        out = F.conv2d(out, kernels.view(-1, 1, kernel_size, 1), groups=batch * channels)
    return out.reshape(batch, channels, height, width).round_().clamp_(0, 255).to(torch.uint8)


def erase(images: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
    """Set ``images[b, :, i:i+h, j:j+w]`` to 0 where ``mask[b]``; ``boxes`` is (B, 4) integer ``(i, j, h, w)``.
    ``inplace`` writes into ``images`` instead of a copy."""
    if images.ndim != 4 or boxes.shape != (images.shape[0], 4):
        raise ValueError(f"erase: expected (B, C, H, W) images and (B, 4) boxes, got {tuple(images.shape)} and "
                         f"{tuple(boxes.shape)}")
    height, width = images.shape[-2:]
    boxes = boxes.to(device=images.device, dtype=torch.long)
    i, j, h, w = (boxes[:, k].view(-1, 1, 1) for k in range(4))
    rows = torch.arange(height, device=images.device).view(1, -1, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, -1)
    inside = (rows >= i) & (rows < i + h) & (cols >= j) & (cols < j + w)
    inside &= mask.to(device=images.device, dtype=torch.bool).view(-1, 1, 1)
    if inplace:
        return images.masked_fill_(inside.unsqueeze(1), 0)
    return images.masked_fill(inside.unsqueeze(1), 0)
