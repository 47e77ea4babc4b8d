"""The four synthetic dataset domains and the knobs that make them differ.

Each real VI-ReID dataset is its own domain: RegDB is low resolution with a far-infrared (thermal) camera, SYSU-MM01
mixes indoor and outdoor visible cameras with near-infrared ones, LLCM is shot in low light with strong sensor
noise, HITSZ-VCM is campus video. A :class:`DomainSpec` collects every difficulty knob of one synthetic domain, so
that learning a later domain genuinely shifts the input distribution of earlier ones (the lifelong setting of CKDA,
arXiv 2511.15016, Sec. 4.1).
"""
from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class DomainSpec:
    """Rendering and attribute-distribution knobs of one synthetic VI-ReID domain.

    Ranges are ``(low, high)`` and sampled uniformly per image unless said otherwise. Intensities are in [0, 1].
    """

    name: str
    """Reader name of the dataset this domain imitates (``"regdb"``, ``"sysu"``, ``"llcm"``, ``"vcm"``)."""
    visible_cameras: tuple[int, ...]
    """Camera ids of the visible cameras."""
    infrared_cameras: tuple[int, ...]
    """Camera ids of the infrared cameras (may overlap visible ids when one camera records both, as in LLCM)."""
    outdoor_cameras: tuple[int, ...] = ()
    """Visible cameras that see outdoor scenes (sky/street backgrounds, daylight)."""
    resolution_factor: float = 1.0
    """Rendering resolution relative to the stored image size; < 1 renders small and upsamples (low-res look)."""
    blur_sigma: tuple[float, float] = (0.0, 0.6)
    """Gaussian blur radius in stored pixels."""
    visible_brightness: tuple[float, float] = (0.75, 1.1)
    """Global gain of visible cameras (one value per camera, then jittered per image by +-15%)."""
    colour_cast_strength: float = 0.12
    """Maximum per-channel multiplicative colour cast of a visible camera."""
    visible_noise: tuple[float, float] = (0.01, 0.03)
    """Standard deviation of additive Gaussian sensor noise in visible images."""
    infrared_noise: tuple[float, float] = (0.01, 0.03)
    """Standard deviation of additive Gaussian sensor noise in infrared images."""
    thermal_weight: float = 0.2
    """Share of emitted heat in the infrared signal (1 = far-infrared thermal camera, 0 = pure near-infrared)."""
    nir_channel_weights: tuple[float, float, float] = (0.299, 0.587, 0.114)
    """How a dye's near-infrared reflectance follows its visible (r, g, b): the camera's illuminator wavelength and
    the local dyes differ between datasets, so one visible colour maps to different infrared greys in different
    domains (default: luminance). Normalised to sum 1. Used only when `palette_nir` is empty (the pretraining pool);
    the benchmark domains give each dye its own grey instead."""
    nir_inverted: bool = False
    """With `nir_channel_weights` (empty `palette_nir`): the reflectance *falls* as the weighted visible channels
    rise (``1 - link``), so dark dyes read bright in near-infrared, as many carbon-free black dyes do. The
    pretraining pool uses it to keep its link far from every benchmark domain's."""
    infrared_texture: float = 0.5
    """How much garment texture survives in near-infrared reflectance (0 = none)."""
    black_hot_fraction: float = 0.0
    """Fraction of infrared cameras showing black-hot polarity (hot = dark)."""
    background_families: tuple[str, ...] = ("indoor",)
    """Background families of indoor visible and infrared cameras: ``indoor``, ``corridor``, ``street``, ``night``."""
    outdoor_background_families: tuple[str, ...] = ("street",)
    """Background families used by the ``outdoor_cameras``."""
    palette: tuple[RGB, ...] = ()
    """Garment colours (dyes) of this domain; a small palette makes identities share colours, so colour alone cannot
    identify and shape/texture (which survive in infrared) must be used too."""
    palette_nir: tuple[float, ...] = ()
    """Near-infrared reflectance of each palette dye, in palette order. Real dyes reflect near-infrared largely
    independently of their visible colour, and the dyes and illuminators differ between datasets, so each domain
    gives the same hues its own infrared greys: a learnable, domain-specific visible-to-infrared link. The benchmark
    domains keep the greys in the order of the dyes' own visible luminance except for one dye moved two ranks up
    (red in RegDB and SYSU-MM01, blue in LLCM, green in HITSZ-VCM); fully shuffled greys could not be learned within
    a session (docs/calibration.md, generator v6). Empty: the reflectance follows `nir_channel_weights` instead."""
    pattern_weights: tuple[float, float, float, float] = (0.15, 0.35, 0.25, 0.25)
    """Probabilities of upper-garment patterns: plain, stripes, checks, two-tone blocks (most garments carry a
    pattern: a cue that survives in infrared)."""
    carry_weights: tuple[float, float, float, float] = (0.4, 0.3, 0.15, 0.15)
    """Probabilities of carried objects: none, backpack, handbag, messenger bag."""
    body_cluster_weights: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    """Probabilities of the four body-shape clusters (slim-tall, average, broad, short)."""
    body_jitter: float = 0.1
    """Relative spread of body measurements around their cluster centre."""
    long_hair_prob: float = 0.3
    """Probability of long hair."""
    skirt_prob: float = 0.1
    """Probability of a skirt instead of trousers."""
    views: tuple[str, ...] = ("front", "back", "side")
    """Viewpoints an image may show. The four benchmark domains use front and back only: at 32x16 a side view leaves
    a figure about three pixels wide (docs/calibration.md, generator v6)."""
    shift_std: float = 0.02
    """Standard deviation of the person's horizontal/vertical offset, in image heights."""
    scale_range: tuple[float, float] = (0.85, 1.0)
    """Person height relative to the image height, before body-height attributes."""
    occlusion_prob: float = 0.1
    """Probability that an image carries a partial occluder."""
    flip_prob: float = 0.5
    """Probability of a horizontal mirror of the whole scene."""
    ambient_temperature: tuple[float, float] = (0.2, 0.4)
    """Normalised background temperature of the thermal part of the infrared signal."""

    def __post_init__(self) -> None:
        def fail(field: str, expected: str) -> None:
            raise ValueError(f"DomainSpec {self.name!r}: {field}={getattr(self, field)!r}; expected {expected}")

        for field in ("visible_cameras", "infrared_cameras"):
            if not getattr(self, field) or any(c < 1 for c in getattr(self, field)):
                fail(field, "a non-empty tuple of camera ids >= 1")
        if not set(self.outdoor_cameras) <= set(self.visible_cameras):
            fail("outdoor_cameras", "a subset of visible_cameras")
        if not 0.1 <= self.resolution_factor <= 1.0:
            fail("resolution_factor", "a value in [0.1, 1]")
        for field in ("blur_sigma", "visible_brightness", "visible_noise", "infrared_noise", "scale_range",
                      "ambient_temperature"):
            low, high = getattr(self, field)
            if not 0.0 <= low <= high:
                fail(field, "(low, high) with 0 <= low <= high")
        for field in ("colour_cast_strength", "thermal_weight", "infrared_texture", "black_hot_fraction",
                      "long_hair_prob", "skirt_prob", "occlusion_prob", "flip_prob", "body_jitter"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                fail(field, "a value in [0, 1]")
        if len(self.nir_channel_weights) != 3 or min(self.nir_channel_weights) < 0 or sum(self.nir_channel_weights) <= 0:
            fail("nir_channel_weights", "3 non-negative weights with a positive sum")
        for field in ("pattern_weights", "carry_weights", "body_cluster_weights"):
            weights = getattr(self, field)
            if len(weights) != 4 or min(weights) < 0 or sum(weights) <= 0:
                fail(field, "4 non-negative weights with a positive sum")
        if self.palette_nir and (len(self.palette_nir) != len(self.palette)
                                 or not all(0 <= x <= 1 for x in self.palette_nir)):
            fail("palette_nir", f"one reflectance in [0, 1] per palette colour ({len(self.palette)})")
        if self.palette and (len(self.palette) < 2 or any(len(c) != 3 or not all(0 <= x <= 1 for x in c)
                                                          for c in self.palette)):
            fail("palette", "at least two (r, g, b) colours with channels in [0, 1]")
        if not self.views or any(v not in ("front", "back", "side") for v in self.views):
            fail("views", "a non-empty tuple of 'front', 'back', 'side'")


def _rgb(*hexes: str) -> tuple[RGB, ...]:
    return tuple(tuple(int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)) for h in hexes)  # type: ignore[misc]


REGDB_DOMAIN = DomainSpec(
    name="regdb",
    visible_cameras=(1,),
    infrared_cameras=(2,),
    resolution_factor=0.5,
    blur_sigma=(0.6, 1.4),
    visible_brightness=(0.8, 1.1),
    colour_cast_strength=0.08,
    visible_noise=(0.01, 0.03),
    infrared_noise=(0.02, 0.04),
    thermal_weight=0.15,
    infrared_texture=0.8,
    black_hot_fraction=0.0,
    background_families=("street",),
    palette=_rgb("1c1c1c", "ecf0f1", "c0392b", "2980b9", "27ae60", "f1c40f", "2c3e50", "95a5a6"),
    palette_nir=(0.1, 0.9, 0.56, 0.32, 0.44, 0.8, 0.2, 0.68),
    carry_weights=(0.45, 0.3, 0.15, 0.1),
    body_cluster_weights=(0.3, 0.35, 0.2, 0.15),
    views=("front", "back"),
    ambient_temperature=(0.15, 0.3),
)
"""RegDB-like: one visible/infrared camera pair, low resolution and blur, white-hot IR (15% heat, 85% reflectance:
see `thermal_weight`), 2 views. The eight dyes are the same hues in every domain (black, white, red, blue, green,
yellow, navy, grey); each domain gives them its own infrared greys (`palette_nir`): the greys follow the dyes' visible
luminance except for one dye that the domain's illuminator lifts two ranks (here red)."""

SYSU_DOMAIN = DomainSpec(
    name="sysu",
    visible_cameras=(1, 2, 4, 5),
    infrared_cameras=(3, 6),
    outdoor_cameras=(4, 5),
    resolution_factor=1.0,
    blur_sigma=(0.0, 0.8),
    visible_brightness=(0.6, 1.15),
    colour_cast_strength=0.1,
    visible_noise=(0.01, 0.04),
    infrared_noise=(0.02, 0.05),
    thermal_weight=0.15,
    infrared_texture=0.9,
    black_hot_fraction=0.0,
    background_families=("indoor", "corridor"),
    outdoor_background_families=("street",),
    palette=_rgb("1b1b1b", "e8e8e8", "a93226", "1f618d", "229954", "d4ac0d", "34495e", "a6acaf"),
    palette_nir=(0.1, 0.9, 0.68, 0.32, 0.44, 0.56, 0.2, 0.8),
    views=("front", "back"),
    carry_weights=(0.35, 0.35, 0.2, 0.1),
    body_cluster_weights=(0.2, 0.4, 0.25, 0.15),
    ambient_temperature=(0.25, 0.4),
)
"""SYSU-MM01-like: indoor (1, 2) and outdoor (4, 5) visible cameras with colour casts and a wide brightness range,
near-infrared cameras 3 and 6 in which red dyes read two ranks brighter than their luminance. Front and back
views, like RegDB (see `DomainSpec.views`)."""

LLCM_DOMAIN = DomainSpec(
    name="llcm",
    visible_cameras=(1, 2, 3, 4, 5, 6, 7, 8, 9),
    infrared_cameras=(1, 2, 4, 5, 6, 7, 8, 9),
    resolution_factor=0.75,
    blur_sigma=(0.3, 1.0),
    visible_brightness=(0.6, 0.9),
    colour_cast_strength=0.1,
    visible_noise=(0.02, 0.045),
    infrared_noise=(0.03, 0.06),
    thermal_weight=0.2,
    infrared_texture=0.8,
    black_hot_fraction=0.0,
    background_families=("night", "street"),
    palette=_rgb("111111", "f0f3f4", "b03a2e", "2874a6", "1e8449", "f4d03f", "2e4053", "99a3a4"),
    palette_nir=(0.1, 0.9, 0.32, 0.8, 0.44, 0.68, 0.2, 0.56),
    views=("front", "back"),
    carry_weights=(0.4, 0.25, 0.2, 0.15),
    body_cluster_weights=(0.25, 0.3, 0.2, 0.25),
    ambient_temperature=(0.1, 0.25),
)
"""LLCM-like: nine cameras recording both modalities (no near-infrared on camera 3), dim light and sensor noise,
night scenes with street lamps; blue dyes read two ranks brighter in infrared than their luminance. Front and back
views."""

VCM_DOMAIN = DomainSpec(
    name="vcm",
    visible_cameras=(1, 2, 3, 4, 5, 6),
    infrared_cameras=(1, 2, 3, 4, 5, 6),
    outdoor_cameras=(1, 2, 3, 4, 5, 6),
    resolution_factor=0.75,
    blur_sigma=(0.2, 0.9),
    visible_brightness=(0.8, 1.1),
    colour_cast_strength=0.08,
    visible_noise=(0.01, 0.04),
    infrared_noise=(0.02, 0.05),
    thermal_weight=0.2,
    infrared_texture=0.8,
    black_hot_fraction=0.0,
    background_families=("street", "corridor"),
    outdoor_background_families=("street",),
    palette=_rgb("17202a", "f4f6f6", "922b21", "2471a3", "196f3d", "b9770e", "283747", "909497"),
    palette_nir=(0.1, 0.9, 0.32, 0.44, 0.68, 0.56, 0.2, 0.8),
    views=("front", "back"),
    carry_weights=(0.2, 0.55, 0.1, 0.15),
    body_cluster_weights=(0.25, 0.35, 0.25, 0.15),
    ambient_temperature=(0.2, 0.35),
)
"""HITSZ-VCM-like: six campus cameras in both modalities, video tracklets; green dyes read two ranks brighter in
infrared than their luminance. Front and back views."""

DOMAINS: dict[str, DomainSpec] = {d.name: d for d in (REGDB_DOMAIN, SYSU_DOMAIN, LLCM_DOMAIN, VCM_DOMAIN)}
"""The four named domains, by reader name."""
