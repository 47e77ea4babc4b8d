"""Persistent latent attributes of a synthetic identity.

An identity is what survives every camera and every image: body shape, garments, carried object and thermal
signature. Visible images show colours and textures; infrared images show shape, texture layout, heat and each
dye's near-infrared grey (a domain-specific link to its visible colour), so a cross-modality model must learn
modality-invariant cues and each domain's dye-to-grey link, as in real VI-ReID.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .colour_distance import min_delta_e
from .domains import DomainSpec

BODY_CLUSTERS: np.ndarray = np.array(
    [  # height, shoulder half-width, waist half-width, head radius, leg half-width
        [0.98, 0.105, 0.080, 0.060, 0.036],  # slim-tall
        [0.92, 0.120, 0.095, 0.064, 0.040],  # average
        [0.90, 0.145, 0.125, 0.068, 0.048],  # broad
        [0.82, 0.115, 0.100, 0.070, 0.040],  # short
    ]
)
"""Centres of the four body-shape clusters; identities of one cluster differ only by a small jitter."""

SKIN_TONES: np.ndarray = np.array([[0.96, 0.80, 0.69], [0.87, 0.67, 0.52], [0.68, 0.48, 0.34], [0.45, 0.30, 0.22]])
"""Skin colours (visible)."""
HAIR_COLOURS: np.ndarray = np.array([[0.08, 0.07, 0.06], [0.30, 0.19, 0.10], [0.72, 0.60, 0.35], [0.55, 0.55, 0.55]])
"""Hair colours (visible)."""
SHOE_COLOURS: np.ndarray = np.array([[0.08, 0.08, 0.08], [0.92, 0.92, 0.92], [0.40, 0.26, 0.15]])
"""Shoe colours (visible)."""

PATTERNS: tuple[str, ...] = ("plain", "stripes", "checks", "blocks")
"""Upper-garment pattern names, indexed by :attr:`IdentityAttributes.pattern`."""
CARRIED: tuple[str, ...] = ("none", "backpack", "handbag", "messenger")
"""Carried-object names, indexed by :attr:`IdentityAttributes.carried`."""


@dataclass(frozen=True, kw_only=True)
class IdentityAttributes:
    """Latent attributes of one identity (fixed across images, cameras and modalities)."""

    body_cluster: int
    """Index into :data:`BODY_CLUSTERS`."""
    height: float
    """Body height as a fraction of the person box."""
    shoulder: float
    """Shoulder half-width, in body heights."""
    waist: float
    """Waist half-width, in body heights."""
    head: float
    """Head radius, in body heights."""
    leg: float
    """Leg half-width, in body heights."""
    torso_length: float
    """Shoulder-to-waist length, in body heights."""
    skin: tuple[float, float, float]
    """Skin colour (visible)."""
    hair: tuple[float, float, float]
    """Hair colour (visible)."""
    long_hair: bool
    """Whether the hair reaches the shoulders."""
    upper: tuple[float, float, float]
    """Upper-garment main colour (visible)."""
    upper_secondary: tuple[float, float, float]
    """Second colour of the upper-garment pattern (visible)."""
    lower: tuple[float, float, float]
    """Lower-garment colour (visible)."""
    shoes: tuple[float, float, float]
    """Shoe colour (visible)."""
    logo: tuple[float, float, float]
    """Chest-logo colour (visible from the front only)."""
    has_logo: bool
    """Whether the upper garment carries a chest logo."""
    pattern: int
    """Index into :data:`PATTERNS`."""
    pattern_frequency: float
    """Pattern cycles per body height."""
    pattern_angle: float
    """Pattern orientation in radians (0 = horizontal stripes)."""
    sleeve: float
    """Sleeve length as a fraction of the arm (0.3 = short sleeves, 1 = long)."""
    lower_length: float
    """Lower-garment length as a fraction of the leg (0.45 = shorts, 1 = trousers)."""
    skirt: bool
    """Whether the lower garment is a skirt."""
    carried: int
    """Index into :data:`CARRIED`."""
    carried_side: int
    """-1 or +1: the side of the body the object hangs on (before any mirror)."""
    bag_colour: tuple[float, float, float]
    """Colour of the carried object (visible)."""
    body_heat: float
    """Normalised skin temperature (thermal)."""
    upper_emissivity: float
    """Heat transmitted through the upper garment, 0 (insulating) .. 1 (thin)."""
    lower_emissivity: float
    """Heat transmitted through the lower garment."""
    upper_nir: float
    """Near-infrared reflectance of the upper garment (only loosely tied to its visible colour)."""
    upper_secondary_nir: float
    """Near-infrared reflectance of the pattern's second colour."""
    lower_nir: float
    """Near-infrared reflectance of the lower garment."""
    bag_nir: float
    """Near-infrared reflectance of the carried object."""


def _luminance(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _nir_reflectance(rng: np.random.Generator, rgb: np.ndarray, spec: DomainSpec, dye: int) -> float:
    if spec.palette_nir:
        # The dye's own domain-specific reflectance (`DomainSpec.palette_nir`), with a small per-garment part.
        return float(np.clip(spec.palette_nir[dye] + rng.normal(0.0, 0.02), 0.02, 0.98))
    # Dyes reflect near-infrared mostly by a domain-specific mix of their visible channels, with a small dye-specific
    # part: the fabric links the two modalities, as in real VI-ReID data (a learnable, not a trivial, cross-modal
    # cue), but the link differs between domains (`DomainSpec.nir_channel_weights`).
    weights = np.asarray(spec.nir_channel_weights, dtype=np.float64)
    link = float(rgb @ (weights / weights.sum()))
    if spec.nir_inverted:
        link = 1.0 - link
    return float(np.clip(0.9 * link + 0.1 * rng.uniform(0.1, 0.9), 0.05, 0.95))


def expected_nir_reflectance(spec: DomainSpec, rgb: np.ndarray | tuple[float, float, float]) -> float:
    """The near-infrared reflectance ``spec``'s link gives a dye of visible colour ``rgb``, without the per-garment
    random part: the grey of the nearest palette dye (CIELAB) when `DomainSpec.palette_nir` is set, else the mean
    of the channel-weight link of `_nir_reflectance`. What the pretraining pool's guard compares between domains."""
    if spec.palette_nir:
        nearest = min_delta_e(spec.palette, [tuple(rgb)])[1]
        return float(spec.palette_nir[nearest])
    weights = np.asarray(spec.nir_channel_weights, dtype=np.float64)
    link = float(np.asarray(rgb, dtype=np.float64) @ (weights / weights.sum()))
    if spec.nir_inverted:
        link = 1.0 - link
    return float(np.clip(0.9 * link + 0.1 * 0.5, 0.05, 0.95))


def _emissivity(rng: np.random.Generator, rgb: np.ndarray) -> float:
    # Thermal emissivity follows the fabric too: darker (denser, absorbing) fabrics read warmer. A small random part
    # keeps two garments of one palette colour apart.
    return float(np.clip(0.3 + 0.5 * (1.0 - _luminance(rgb)) + rng.uniform(-0.04, 0.04), 0.05, 1.0))


def sample_identity(spec: DomainSpec, rng: np.random.Generator) -> IdentityAttributes:
    """Draw one identity from the attribute distribution of ``spec``."""
    if not spec.palette:
        raise ValueError(f"DomainSpec {spec.name!r}: palette is empty; expected at least two garment colours")
    palette = np.asarray(spec.palette, dtype=np.float64)
    weights = np.asarray(spec.body_cluster_weights, dtype=np.float64)
    cluster = int(rng.choice(len(BODY_CLUSTERS), p=weights / weights.sum()))
    centre = BODY_CLUSTERS[cluster]
    body = centre * (1.0 + rng.normal(0.0, spec.body_jitter, size=centre.shape))

    def colour() -> tuple[np.ndarray, int]:
        # Palette colours (dyes) with a small tint, so two identities of one dye are close but not equal.
        dye = int(rng.integers(len(palette)))
        return np.clip(palette[dye] + rng.normal(0.0, 0.02, size=3), 0.0, 1.0), dye

    (upper, upper_dye), (secondary, secondary_dye), (lower, lower_dye), (bag, bag_dye), (logo, _) = (
        colour(), colour(), colour(), colour(), colour())
    pattern = int(rng.choice(len(PATTERNS), p=np.asarray(spec.pattern_weights) / sum(spec.pattern_weights)))
    carried = int(rng.choice(len(CARRIED), p=np.asarray(spec.carry_weights) / sum(spec.carry_weights)))
    skirt = bool(rng.random() < spec.skirt_prob)
    upper_nir = _nir_reflectance(rng, upper, spec, upper_dye)

    def secondary_nir() -> float:  # drawn in the constructor's argument order, like every other attribute
        if spec.palette_nir:  # the pattern's second fabric is a dye of its own
            return _nir_reflectance(rng, secondary, spec, secondary_dye)
        return float(np.clip(upper_nir + rng.choice([-1, 1]) * rng.uniform(0.2, 0.45), 0.05, 0.95))

    return IdentityAttributes(
        body_cluster=cluster,
        height=float(np.clip(body[0], 0.7, 1.0)),
        shoulder=float(body[1]),
        waist=float(body[2]),
        head=float(body[3]),
        leg=float(body[4]),
        torso_length=float(rng.uniform(0.30, 0.36)),
        skin=tuple(SKIN_TONES[rng.integers(len(SKIN_TONES))]),
        hair=tuple(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]),
        long_hair=bool(rng.random() < spec.long_hair_prob),
        upper=tuple(upper),
        upper_secondary=tuple(secondary),
        lower=tuple(lower),
        shoes=tuple(SHOE_COLOURS[rng.integers(len(SHOE_COLOURS))]),
        logo=tuple(logo),
        has_logo=bool(rng.random() < 0.3),
        pattern=pattern,
        pattern_frequency=float(rng.choice([3.0, 5.0, 8.0])),
        pattern_angle=float(rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])),
        sleeve=float(rng.choice([0.35, 1.0], p=[0.4, 0.6])),
        lower_length=1.0 if skirt else float(rng.choice([0.45, 1.0], p=[0.25, 0.75])),
        skirt=skirt,
        carried=carried,
        carried_side=int(rng.choice([-1, 1])),
        bag_colour=tuple(bag),
        body_heat=float(rng.uniform(0.8, 1.0)),
        upper_emissivity=_emissivity(rng, upper),
        lower_emissivity=_emissivity(rng, lower),
        upper_nir=upper_nir,
        upper_secondary_nir=secondary_nir(),
        lower_nir=_nir_reflectance(rng, lower, spec, lower_dye),
        bag_nir=_nir_reflectance(rng, bag, spec, bag_dye),
    )


def sample_identities(spec: DomainSpec, count: int, rng: np.random.Generator) -> list[IdentityAttributes]:
    """Draw ``count`` independent identities of domain ``spec``."""
    if count < 0:
        raise ValueError(f"identity count must be >= 0, got {count}")
    return [sample_identity(spec, rng) for _ in range(count)]
