"""Per-image nuisances (pose, framing, occlusion, blur, noise) and per-camera conditions.

Nuisances are what changes between two images of one identity; cameras are what every image of one camera
shares (illumination, colour cast, scene, infrared polarity). Both are drawn as numpy arrays so that a whole batch of
images of one identity renders in one vectorised pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .domains import DomainSpec

VIEWS: tuple[str, ...] = ("front", "back", "side")
"""Viewpoint names, indexed by :attr:`Nuisance.view`."""
BACKGROUND_FAMILIES: tuple[str, ...] = ("indoor", "corridor", "street", "night", "park", "studio")
"""Background family names a :class:`DomainSpec` may use (``park`` and ``studio`` only in the pretraining pool)."""


@dataclass(frozen=True, kw_only=True)
class CameraCondition:
    """What every image of one camera of one modality shares."""

    camid: int
    """Camera id in the dataset's numbering."""
    infrared: bool
    """Whether this camera records the infrared modality."""
    background: str
    """Background family (one of :data:`BACKGROUND_FAMILIES`)."""
    scene_top: tuple[float, float, float]
    """Colour of the upper part of the scene (wall, sky, buildings)."""
    scene_bottom: tuple[float, float, float]
    """Colour of the ground."""
    horizon: float
    """Image-height fraction where the ground starts."""
    brightness: float
    """Global gain (visible) or near-infrared illumination strength (infrared)."""
    cast: tuple[float, float, float]
    """Multiplicative per-channel colour cast (visible; ones for infrared)."""
    light_direction: float
    """Horizontal shading gradient on the person, -1 (light from the left) .. 1."""
    black_hot: bool
    """Infrared polarity: hot is dark when true."""
    ambient: float
    """Normalised ambient temperature seen by the thermal part of the infrared signal."""


@dataclass(frozen=True, kw_only=True)
class Nuisance:
    """Per-image nuisance parameters of a batch of ``n`` images (every field is an array of length ``n``)."""

    dx: np.ndarray
    """Horizontal offset of the person, in image heights."""
    dy: np.ndarray
    """Vertical offset of the person, in image heights."""
    scale: np.ndarray
    """Person box height relative to the image height."""
    flip: np.ndarray
    """Whether the person is mirrored (bool)."""
    view: np.ndarray
    """Viewpoint index into :data:`VIEWS`."""
    stride: np.ndarray
    """Walking phase, -1 .. 1 (legs and arms apart)."""
    occluded: np.ndarray
    """Whether a partial occluder is drawn (bool)."""
    occ_kind: np.ndarray
    """0: occluder enters from a side, 1: occluder covers the bottom."""
    occ_extent: np.ndarray
    """Occluder size: width fraction (side) or height fraction (bottom)."""
    occ_start: np.ndarray
    """Side occluder: top of the occluder as an image-height fraction; side (left/right) from its sign."""
    occ_value: np.ndarray
    """Occluder shade 0 .. 1 (same for both modalities' tone mapping)."""
    blur: np.ndarray
    """Gaussian blur radius in stored pixels."""
    noise_level: np.ndarray
    """Sensor-noise level 0 .. 1, mapped onto the domain's visible or infrared noise range at render time."""
    gain: np.ndarray
    """Per-image illumination jitter (multiplicative)."""
    shared_background: bool = False
    """Whether every image of the batch shows the same background instance (video frames of one tracklet)."""

    def __len__(self) -> int:
        return int(self.dx.shape[0])


def sample_cameras(spec: DomainSpec, rng: np.random.Generator) -> dict[tuple[int, int], CameraCondition]:
    """Draw the fixed condition of every camera of ``spec``, keyed by ``(modality, camid)`` (0 visible, 1 infrared)."""
    cams: dict[tuple[int, int], CameraCondition] = {}
    ir_ids = list(spec.infrared_cameras)
    n_black = int(round(spec.black_hot_fraction * len(ir_ids)))
    black = set(rng.permutation(ir_ids)[:n_black].tolist()) if n_black else set()
    for modality, ids in ((0, spec.visible_cameras), (1, spec.infrared_cameras)):
        for camid in ids:
            outdoor = modality == 0 and camid in spec.outdoor_cameras
            families = spec.outdoor_background_families if outdoor else spec.background_families
            for family in families:
                if family not in BACKGROUND_FAMILIES:
                    raise ValueError(f"DomainSpec {spec.name!r}: unknown background family {family!r}; "
                                     f"expected one of {BACKGROUND_FAMILIES}")
            family = families[int(rng.integers(len(families)))]
            top, bottom, horizon = _scene_colours(family, rng)
            if modality == 0:
                lo, hi = spec.visible_brightness
                brightness = float(rng.uniform(lo, hi) * (1.15 if outdoor else 1.0))
                strength = spec.colour_cast_strength
                cast = tuple(float(c) for c in 1.0 + rng.uniform(-strength, strength, 3))
            else:
                brightness = float(rng.uniform(0.85, 1.0))
                cast = (1.0, 1.0, 1.0)
            cams[(modality, camid)] = CameraCondition(
                camid=camid, infrared=modality == 1, background=family, scene_top=top, scene_bottom=bottom,
                horizon=horizon, brightness=brightness, cast=cast, light_direction=float(rng.uniform(-1.0, 1.0)),
                black_hot=camid in black and modality == 1, ambient=float(rng.uniform(*spec.ambient_temperature)))
    return cams


@dataclass(frozen=True)
class SceneRange:
    """One scene look of a background family: uniform ranges of the base colours above and below the horizon."""

    top: tuple[tuple[float, float, float], tuple[float, float, float]]
    """(low, high) RGB of the scene above the horizon (wall, sky, backdrop)."""
    bottom: tuple[tuple[float, float, float], tuple[float, float, float]]
    """(low, high) RGB of the scene below the horizon (floor, ground)."""
    horizon: tuple[float, float]
    """(low, high) height of the horizon, in image heights from the top."""

    def anchors(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The centres of the top and bottom colour ranges (what the disjointness guard measures)."""
        return (tuple(0.5 * (lo + hi) for lo, hi in zip(*self.top)),  # type: ignore[return-value]
                tuple(0.5 * (lo + hi) for lo, hi in zip(*self.bottom)))


SCENES: dict[str, tuple[SceneRange, ...]] = {
    "indoor": (SceneRange(((0.6, 0.55, 0.45), (0.9, 0.85, 0.8)), ((0.3, 0.25, 0.2), (0.55, 0.5, 0.45)),
                          (0.62, 0.8)),),
    "corridor": (SceneRange(((0.45, 0.45, 0.45), (0.75, 0.75, 0.8)), ((0.2, 0.2, 0.2), (0.45, 0.4, 0.4)),
                            (0.55, 0.72)),),
    "street": (SceneRange(((0.45, 0.55, 0.55), (0.7, 0.8, 0.95)), ((0.3, 0.3, 0.3), (0.55, 0.55, 0.5)),
                          (0.4, 0.6)),),
    "night": (SceneRange(((0.02, 0.03, 0.06), (0.12, 0.12, 0.2)), ((0.1, 0.1, 0.1), (0.25, 0.22, 0.2)),
                         (0.5, 0.7)),),
    # Pretraining pool only: autumn foliage above a red-brown path of fallen leaves (rendered with tree trunks).
    "park": (SceneRange(((0.6, 0.32, 0.05), (0.8, 0.45, 0.15)), ((0.5, 0.18, 0.1), (0.62, 0.26, 0.16)),
                        (0.45, 0.65)),),
    # Pretraining pool only: one of three saturated paper backdrops (magenta, cyan, violet) with a darker floor of
    # the same hue (rendered with a spotlight, no clutter).
    "studio": (SceneRange(((0.75, 0.1, 0.55), (0.9, 0.2, 0.7)), ((0.45, 0.05, 0.3), (0.55, 0.12, 0.4)), (0.7, 0.9)),
               SceneRange(((0.0, 0.7, 0.75), (0.1, 0.85, 0.9)), ((0.0, 0.4, 0.45), (0.06, 0.5, 0.55)), (0.7, 0.9)),
               SceneRange(((0.45, 0.2, 0.8), (0.55, 0.3, 0.95)), ((0.25, 0.1, 0.45), (0.32, 0.16, 0.55)),
                          (0.7, 0.9))),
}
"""Scene colour ranges of every background family (:data:`BACKGROUND_FAMILIES`). A family with several looks
picks one per camera; the benchmark's four families have one each (so no extra random draw)."""

CLUTTER_COLOURS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "indoor": (), "corridor": (), "street": ((0.2, 0.38, 0.15),), "night": ((0.9, 0.7, 0.35),),
    "park": ((0.33, 0.15, 0.04),), "studio": (),
}
"""Colours of the family-specific objects the renderer draws over the scene (`render._background`): street
vegetation, night street lamps, park tree trunks."""


def _scene_colours(family: str, rng: np.random.Generator) -> tuple[tuple, tuple, float]:
    """Base colours and horizon of one camera's scene, by background family (:data:`SCENES`)."""
    if family not in SCENES:
        raise ValueError(f"unknown background family {family!r}; expected one of {tuple(SCENES)}")
    looks = SCENES[family]
    look = looks[int(rng.integers(len(looks)))] if len(looks) > 1 else looks[0]
    top = rng.uniform(*look.top)
    bottom = rng.uniform(*look.bottom)
    horizon = rng.uniform(*look.horizon)
    return tuple(float(c) for c in top), tuple(float(c) for c in bottom), float(horizon)


def sample_nuisance(spec: DomainSpec, rng: np.random.Generator, n: int) -> Nuisance:
    """Independent nuisances for ``n`` still images."""
    view_ids = np.array([VIEWS.index(v) for v in spec.views])
    return Nuisance(
        dx=rng.normal(0.0, spec.shift_std, n),
        dy=rng.normal(0.0, spec.shift_std * 0.5, n),
        scale=rng.uniform(*spec.scale_range, n),
        flip=rng.random(n) < spec.flip_prob,
        view=view_ids[rng.integers(len(view_ids), size=n)],
        stride=rng.uniform(-1.0, 1.0, n),
        occluded=rng.random(n) < spec.occlusion_prob,
        occ_kind=rng.integers(0, 2, n),
        occ_extent=rng.uniform(0.15, 0.35, n),
        occ_start=rng.uniform(0.0, 0.5, n) * rng.choice([-1.0, 1.0], n),
        occ_value=rng.uniform(0.05, 0.9, n),
        blur=rng.uniform(*spec.blur_sigma, n),
        noise_level=rng.random(n),
        gain=rng.uniform(0.85, 1.15, n),
    )


def tracklet_nuisance(spec: DomainSpec, rng: np.random.Generator, n: int) -> Nuisance:
    """Smoothly varying nuisances for ``n`` consecutive video frames of one walking person."""
    t = np.arange(n, dtype=np.float64)
    view_ids = np.array([VIEWS.index(v) for v in spec.views])
    velocity = rng.uniform(-0.006, 0.006)
    period = rng.uniform(8.0, 12.0)
    occluded = bool(rng.random() < spec.occlusion_prob)
    one = np.ones(n)
    return Nuisance(
        dx=rng.normal(0.0, spec.shift_std) + velocity * (t - n / 2) + rng.normal(0.0, 0.003, n),
        dy=rng.normal(0.0, spec.shift_std * 0.5) + rng.normal(0.0, 0.003, n),
        scale=rng.uniform(*spec.scale_range) * (1.0 + 0.002 * t),
        flip=np.full(n, rng.random() < spec.flip_prob),
        view=np.full(n, view_ids[rng.integers(len(view_ids))]),
        stride=np.sin(rng.uniform(0, 2 * np.pi) + 2 * np.pi * t / period),
        occluded=np.full(n, occluded),
        occ_kind=np.full(n, rng.integers(0, 2)),
        occ_extent=one * rng.uniform(0.15, 0.35),
        occ_start=one * rng.uniform(0.0, 0.5) * rng.choice([-1.0, 1.0]),
        occ_value=one * rng.uniform(0.05, 0.9),
        blur=one * rng.uniform(*spec.blur_sigma),
        noise_level=one * rng.random(),
        gain=one * rng.uniform(0.85, 1.15) + rng.normal(0.0, 0.01, n),
        shared_background=True,
    )
