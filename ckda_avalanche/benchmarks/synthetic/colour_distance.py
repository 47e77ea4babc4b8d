"""Colour distances of the synthetic generator: sRGB -> CIELAB and the CIE76 colour difference.

The pretraining pool is kept apart from the benchmark by distances, not by equality of colour values: two colours
that differ in the fourth decimal are different numbers but the same colour to a model. CIELAB (CIE 1976
L*a*b*, D65 white) is close to perceptually uniform, and its Euclidean distance ΔE*ab (CIE76) is the textbook
colour difference: about 2.3 is a just-noticeable difference, and above ~10 two colours read as different colours
(Sharma, *Digital Color Imaging Handbook*, ch. 1). Pure numpy, float64.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["srgb_to_lab", "delta_e76", "min_delta_e"]

_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: Sequence[float] | np.ndarray) -> np.ndarray:
    """CIELAB (L* in [0, 100]) of sRGB colours with channels in [0, 1]; any leading shape, last axis 3."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"srgb_to_lab: expected (..., 3) sRGB values, got shape {rgb.shape}")
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65_WHITE
    delta = 6.0 / 29.0
    f = np.where(xyz > delta ** 3, np.cbrt(xyz), xyz / (3 * delta ** 2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1)


def delta_e76(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    """CIE76 colour difference ΔE*ab between sRGB colours ``a`` and ``b`` (broadcast over leading axes)."""
    return np.linalg.norm(srgb_to_lab(a) - srgb_to_lab(b), axis=-1)


def min_delta_e(colours: Sequence[Sequence[float]], others: Sequence[Sequence[float]]) -> tuple[float, int, int]:
    """Smallest ΔE*ab between any colour of ``colours`` and any of ``others``, with the two indices."""
    a, b = np.asarray(colours, dtype=np.float64), np.asarray(others, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return float("inf"), -1, -1
    distances = delta_e76(a[:, None, :], b[None, :, :])
    i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
    return float(distances[i, j]), int(i), int(j)
