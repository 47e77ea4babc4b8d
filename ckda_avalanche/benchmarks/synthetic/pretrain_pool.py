"""The pretraining pool: a synthetic stand-in for ImageNet that shares nothing with the benchmark.

CKDA (arXiv 2511.15016, §4.1) starts every VI-LReID run from an ImageNet-pretrained ViT. Nothing can be downloaded
here, so ``ckda pretrain`` trains the ``cpu`` backbone on this pool instead. The pool is kept apart from the four
benchmark domains (``domains.py``) in every generative knob a model could memorise:

- its own random stream (:data:`POOL_SEED_SALT` is mixed into the seed, so no identity is ever redrawn);
- its own garment palettes (every dye at least `PALETTE_MIN_DELTA_E` in CIELAB from every benchmark dye),
  background families with their own renderers and scene colours (``park``, ``studio``; the benchmark uses
  ``indoor``, ``corridor``, ``street``, ``night``; every scene colour at least `SCENE_MIN_DELTA_E` from the
  benchmark's), illumination ranges (bright daylight, mild casts) and near-infrared link (inverted: dark dyes read
  bright; at least `NIR_LINK_MIN_DISTANCE` from every benchmark domain's, which give each dye its own
  domain-specific grey, `DomainSpec.palette_nir`);
- visible images only by default, like ImageNet; ``modalities="both"`` adds near-infrared cameras for the
  comparison reported in ``docs/pretraining.md``.

Images are rendered by the benchmark's own renderer at the stored size (128x64) and resized once to the training
resolution, as the benchmark's test transform does, then kept in memory as one uint8 tensor.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..transforms import resize_image
from . import generate
from .colour_distance import min_delta_e
from .domains import DOMAINS, DomainSpec, _rgb
from .identity import expected_nir_reflectance, sample_identity
from .nuisance import CLUTTER_COLOURS, SCENES, sample_cameras, sample_nuisance
from .render import render_images

POOL_VERSION = 2
"""Version of the pool's domains and scenes: 1 until generator v6 (exact-colour guard, ``park``/``studio`` drawn
by the ``indoor`` renderer, luminance-like NIR links); 2: the distance guard below, own ``park``/``studio``
renderers and scene colours, inverted NIR links."""
PALETTE_MIN_DELTA_E = 15.0
"""Smallest CIE76 ΔE*ab allowed between a pool garment dye and a benchmark dye (about 2.3 is a just-noticeable
difference; 15 separates colours that read as different shades or hues)."""
SCENE_MIN_DELTA_E = 15.0
"""Smallest ΔE*ab allowed between a pool scene colour and a benchmark scene colour (`pool_separation`)."""
NIR_LINK_MIN_DISTANCE = 0.2
"""Smallest mean absolute difference of near-infrared reflectance allowed between the pool's link and a benchmark
domain's, on the benchmark domain's dyes; any two benchmark domains differ by 0.06-0.15."""
POOL_SEED_SALT = 7_919_003
"""Mixed into the pool's seed so that its random stream never coincides with a benchmark generation's."""
STORED_SIZE = generate.STORED_SIZE
"""Size the pool is rendered at (the benchmark generator's default stored size) before resizing."""
MODALITY_CHOICES = ("visible", "both")
"""Accepted values of `render_pretrain_pool`'s ``modalities``."""

POOL_DAYLIGHT = DomainSpec(
    name="pool_daylight",
    visible_cameras=(1, 2, 3, 4, 5, 6),
    infrared_cameras=(7, 8),
    outdoor_cameras=(1, 2, 3, 4, 5, 6),
    resolution_factor=1.0,
    blur_sigma=(0.0, 0.7),
    visible_brightness=(0.95, 1.25),
    colour_cast_strength=0.08,
    visible_noise=(0.005, 0.02),
    infrared_noise=(0.01, 0.03),
    thermal_weight=0.1,
    nir_channel_weights=(0.2, 0.6, 0.2),
    nir_inverted=True,
    infrared_texture=0.7,
    background_families=("studio",),
    outdoor_background_families=("park", "studio"),
    palette=_rgb("8e44ad", "e67e22", "16a085", "ff8fb1", "808000", "6e2c00", "5dade2", "c39bd3"),
    pattern_weights=(0.3, 0.3, 0.25, 0.15),
    carry_weights=(0.35, 0.3, 0.2, 0.15),
    body_cluster_weights=(0.25, 0.25, 0.25, 0.25),
    views=("front", "back", "side"),
    shift_std=0.03,
    scale_range=(0.8, 1.0),
    occlusion_prob=0.15,
    ambient_temperature=(0.3, 0.45),
)
"""Bright outdoor/studio cameras, eight garment colours found in no benchmark palette."""

POOL_DUSK = DomainSpec(
    name="pool_dusk",
    visible_cameras=(1, 2, 3, 4),
    infrared_cameras=(5, 6),
    outdoor_cameras=(1, 2),
    resolution_factor=0.6,
    blur_sigma=(0.3, 1.1),
    visible_brightness=(0.55, 0.85),
    colour_cast_strength=0.12,
    visible_noise=(0.02, 0.04),
    infrared_noise=(0.02, 0.05),
    thermal_weight=0.25,
    nir_channel_weights=(0.25, 0.5, 0.25),
    nir_inverted=True,
    infrared_texture=0.6,
    background_families=("studio",),
    outdoor_background_families=("park",),
    palette=_rgb("4a235a", "dc7633", "117a65", "f5b7b1", "7d6608", "a04000", "85c1e9", "d7bde2"),
    pattern_weights=(0.4, 0.2, 0.2, 0.2),
    carry_weights=(0.3, 0.3, 0.25, 0.15),
    body_cluster_weights=(0.2, 0.3, 0.3, 0.2),
    views=("front", "back", "side"),
    ambient_temperature=(0.25, 0.4),
)
"""Dimmer, lower-resolution cameras with the darker shades of the same hues."""

POOL_DOMAINS: tuple[DomainSpec, ...] = (POOL_DAYLIGHT, POOL_DUSK)
"""Domains of the pool; identities alternate between them."""


def _families(d: DomainSpec) -> set[str]:
    return set(d.background_families) | set(d.outdoor_background_families)


def _scene_colours_of(families: set[str]) -> list[tuple[float, float, float]]:
    return [c for f in sorted(families) for look in SCENES[f] for c in (*look.anchors(), *CLUTTER_COLOURS[f])]


def pool_separation(domains: tuple[DomainSpec, ...] = POOL_DOMAINS,
                    benchmark: tuple[DomainSpec, ...] = tuple(DOMAINS.values())) -> dict[str, dict[str, object]]:
    """Per pool domain, how far it sits from the benchmark domains (what `check_disjoint_from_benchmark` checks):

    - ``palette_delta_e``: the smallest CIE76 ΔE*ab between any of its garment dyes and any benchmark dye;
    - ``scene_delta_e``: the smallest ΔE*ab between any colour of its scenes (centres of the top and bottom colour
      ranges of each look of each background family, `nuisance.SCENES`, and the family's object colours,
      `nuisance.CLUTTER_COLOURS`) and any of the benchmark's;
    - ``shared_families``: background family names it shares with the benchmark;
    - ``nir_link_distance``: the smallest, over benchmark domains, mean absolute difference between its NIR link
      and the benchmark domain's, on the benchmark domain's own dyes (`identity.expected_nir_reflectance`).
    """
    bench_palette = [c for d in benchmark for c in d.palette]
    bench_families = set().union(*(_families(d) for d in benchmark))
    bench_scenes = _scene_colours_of(bench_families)
    out: dict[str, dict[str, object]] = {}
    for d in domains:
        unknown = sorted(_families(d) - set(SCENES))
        if unknown:
            raise ValueError(f"pretraining domain {d.name!r}: background families {unknown} have no renderer; "
                             f"expected some of {tuple(SCENES)}")
        links = [float(np.mean([abs(expected_nir_reflectance(d, dye) - expected_nir_reflectance(b, dye))
                                for dye in b.palette])) for b in benchmark]
        out[d.name] = {
            "palette_delta_e": round(min_delta_e(d.palette, bench_palette)[0], 2),
            "scene_delta_e": round(min_delta_e(_scene_colours_of(_families(d)), bench_scenes)[0], 2),
            "shared_families": sorted(_families(d) & bench_families),
            "nir_link_distance": round(min(links), 3),
        }
    return out


def check_disjoint_from_benchmark(domains: tuple[DomainSpec, ...] = POOL_DOMAINS) -> None:
    """Raise ValueError if a pool domain comes closer to the benchmark than the stated distances
    (`PALETTE_MIN_DELTA_E`, `SCENE_MIN_DELTA_E`, `NIR_LINK_MIN_DISTANCE`) or shares a background family name;
    the message names the domain and every measure that fails (`pool_separation`)."""
    for name, sep in pool_separation(domains).items():
        problems = []
        if sep["palette_delta_e"] < PALETTE_MIN_DELTA_E:
            problems.append(f"a garment dye within ΔE {sep['palette_delta_e']} of a benchmark dye "
                            f"(need >= {PALETTE_MIN_DELTA_E})")
        if sep["scene_delta_e"] < SCENE_MIN_DELTA_E:
            problems.append(f"a scene colour within ΔE {sep['scene_delta_e']} of a benchmark scene "
                            f"(need >= {SCENE_MIN_DELTA_E})")
        if sep["shared_families"]:
            problems.append(f"background families {sep['shared_families']}")
        if sep["nir_link_distance"] < NIR_LINK_MIN_DISTANCE:
            problems.append(f"a NIR link {sep['nir_link_distance']} from a benchmark domain's "
                            f"(need >= {NIR_LINK_MIN_DISTANCE})")
        if problems:
            raise ValueError(f"pretraining domain {name!r} overlaps the benchmark: {'; '.join(problems)}")


def pool_record(domains: tuple[DomainSpec, ...] = POOL_DOMAINS) -> dict[str, object]:
    """What a pretrained file records about its pool: generator and pool versions, every domain spec and scene
    range, and the measured separation from the benchmark."""
    families = sorted(set().union(*(_families(d) for d in domains)))
    return {"generator_version": generate.SYNTHETIC_VERSION, "pool_version": POOL_VERSION,
            "seed_salt": POOL_SEED_SALT, "domains": [dataclasses.asdict(d) for d in domains],
            "scenes": {f: [dataclasses.asdict(look) for look in SCENES[f]] for f in families},
            "thresholds": {"palette_delta_e": PALETTE_MIN_DELTA_E, "scene_delta_e": SCENE_MIN_DELTA_E,
                           "nir_link_distance": NIR_LINK_MIN_DISTANCE},
            "separation": pool_separation(domains)}


@dataclass(frozen=True)
class PretrainPool:
    """The rendered pool, in memory."""

    images: torch.Tensor
    """uint8 (N, 3, H, W) at the training resolution."""
    labels: torch.Tensor
    """long (N,) identity index 0..num_ids-1."""
    modality: torch.Tensor
    """long (N,) 0 visible / 1 infrared."""
    num_ids: int
    """Number of identities."""

    def __len__(self) -> int:
        return int(self.labels.numel())


def resize_uint8(images: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, h, w) uint8 by the benchmark's own resize stage (`transforms.resize_image`:
    bicubic, antialiased), so pool and benchmark images are resized identically."""
    return torch.stack([resize_image(torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1), size)
                        for im in images])


def render_pretrain_pool(*, num_ids: int, cameras_per_id: int = 3, images_per_camera: int = 3,
                         modalities: str = "visible", img_size: tuple[int, int], seed: int = 0) -> PretrainPool:
    """Render ``num_ids`` identities, each in ``cameras_per_id`` visible cameras (+ one infrared camera when
    ``modalities == "both"``) with ``images_per_camera`` images each, resized to ``img_size``."""
    if modalities not in MODALITY_CHOICES:
        raise ValueError(f"pretraining pool modalities: expected one of {MODALITY_CHOICES}, got {modalities!r}")
    if num_ids < 2 or cameras_per_id < 1 or images_per_camera < 1:
        raise ValueError(f"pretraining pool: need num_ids >= 2, cameras_per_id >= 1, images_per_camera >= 1; got "
                         f"{num_ids}, {cameras_per_id}, {images_per_camera}")
    check_disjoint_from_benchmark()
    root = np.random.SeedSequence([int(seed), POOL_SEED_SALT])
    cam_seeds = root.spawn(len(POOL_DOMAINS))
    rng = np.random.default_rng(root.spawn(1)[0])
    cameras = [sample_cameras(d, np.random.default_rng(s)) for d, s in zip(POOL_DOMAINS, cam_seeds)]
    chunks, labels, modality = [], [], []
    for pid in range(num_ids):
        k = pid % len(POOL_DOMAINS)
        spec, cams = POOL_DOMAINS[k], cameras[k]
        who = sample_identity(spec, rng)
        vis = rng.choice(np.asarray(spec.visible_cameras), size=min(cameras_per_id, len(spec.visible_cameras)),
                         replace=False)
        views = [(0, int(c)) for c in vis]
        if modalities == "both":
            views.append((1, int(rng.choice(np.asarray(spec.infrared_cameras)))))
        for mod, cam in views:
            imgs = render_images(who, cams[(mod, cam)], sample_nuisance(spec, rng, images_per_camera), spec,
                                 STORED_SIZE, rng)
            chunks.append(resize_uint8(np.stack(imgs), img_size))
            labels += [pid] * images_per_camera
            modality += [mod] * images_per_camera
    return PretrainPool(images=torch.cat(chunks), labels=torch.tensor(labels, dtype=torch.long),
                        modality=torch.tensor(modality, dtype=torch.long), num_ids=num_ids)
