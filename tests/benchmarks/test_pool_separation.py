"""The pretraining pool is kept apart from the benchmark by measured distances, and the guard fails on overlap."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ckda_avalanche.benchmarks.synthetic import DOMAINS
from ckda_avalanche.benchmarks.synthetic.colour_distance import delta_e76, srgb_to_lab
from ckda_avalanche.benchmarks.synthetic.nuisance import BACKGROUND_FAMILIES, SCENES, CameraCondition
from ckda_avalanche.benchmarks.synthetic.pretrain_pool import (
    POOL_DOMAINS,
    check_disjoint_from_benchmark,
    pool_record,
    pool_separation,
)
from ckda_avalanche.benchmarks.synthetic.render import _background


def test_lab_of_reference_colours():
    # Published sRGB (D65) -> CIELAB values: white (100, 0, 0), black (0, 0, 0), pure red (53.24, 80.09, 67.20),
    # pure green (87.73, -86.18, 83.18), pure blue (32.30, 79.19, -107.86).
    lab = srgb_to_lab([[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    expected = [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86]]
    np.testing.assert_allclose(lab, expected, atol=0.05)
    assert delta_e76([1, 1, 1], [0, 0, 0]) == pytest.approx(100.0, abs=1e-3)


def _pool_colour_distance_by_hand(pool, bench):
    lab = srgb_to_lab(np.array(pool))
    other = srgb_to_lab(np.array(bench))
    return min(float(np.sqrt(((a - b) ** 2).sum())) for a in lab for b in other)


def test_pool_palettes_are_far_from_every_benchmark_dye():
    bench = [c for d in DOMAINS.values() for c in d.palette]
    for pool in POOL_DOMAINS:
        assert _pool_colour_distance_by_hand(pool.palette, bench) >= 15.0
    check_disjoint_from_benchmark()


def test_pool_nir_link_is_far_from_every_benchmark_link():
    # The pool's link on a benchmark dye, written out: 1 - weighted channels, times 0.9, plus the mean 0.05 noise.
    for pool in POOL_DOMAINS:
        w = np.array(pool.nir_channel_weights) / sum(pool.nir_channel_weights)
        for bench in DOMAINS.values():
            pool_greys = np.clip(0.9 * (1 - np.array(bench.palette) @ w) + 0.05, 0.05, 0.95)
            assert np.abs(pool_greys - np.array(bench.palette_nir)).mean() >= 0.2
    separation = pool_separation()
    assert all(s["nir_link_distance"] >= 0.2 for s in separation.values())


def _overlapping(**changes):
    return dataclasses.replace(POOL_DOMAINS[0], **changes)


def test_guard_fails_on_a_near_copy_of_a_benchmark_colour():
    red = DOMAINS["regdb"].palette[2]
    nudged = tuple(min(1.0, c + 0.01) for c in red)  # not equal, but the same colour to the eye
    assert nudged != red
    leaky = _overlapping(palette=(nudged, (0.5, 0.1, 0.9)))
    with pytest.raises(ValueError, match="pool_daylight.*overlaps the benchmark.*garment dye within ΔE"):
        check_disjoint_from_benchmark((leaky,))


def test_guard_fails_on_a_benchmark_like_nir_link():
    # Luminance weights, not inverted: greys within ~0.1 of every benchmark domain's.
    leaky = _overlapping(nir_channel_weights=(0.299, 0.587, 0.114), nir_inverted=False)
    with pytest.raises(ValueError, match="NIR link"):
        check_disjoint_from_benchmark((leaky,))
    copied = _overlapping(palette=DOMAINS["sysu"].palette, palette_nir=DOMAINS["sysu"].palette_nir)
    with pytest.raises(ValueError, match="garment dye.*NIR link 0.0"):
        check_disjoint_from_benchmark((copied,))


def test_guard_fails_on_a_benchmark_background_family():
    leaky = _overlapping(outdoor_background_families=("park", "street"))
    with pytest.raises(ValueError, match=r"scene colour within ΔE 0.0.*background families \['street'\]"):
        check_disjoint_from_benchmark((leaky,))


def test_every_family_has_its_own_renderer():
    assert set(SCENES) == set(BACKGROUND_FAMILIES)
    rng_args = dict(n=2, h=32, w=16)

    def render(family):
        cam = CameraCondition(camid=1, infrared=False, background=family, scene_top=(0.5, 0.5, 0.5),
                              scene_bottom=(0.3, 0.3, 0.3), horizon=0.6, brightness=1.0, cast=(1.0, 1.0, 1.0),
                              light_direction=0.0, black_hot=False, ambient=0.3)
        return _background(cam, np.random.default_rng(0), **rng_args)

    indoor = render("indoor")
    for family in ("park", "studio"):  # same scene colours and random stream: only the renderer differs
        assert not np.allclose(render(family), indoor)
    bogus = dataclasses.replace(
        CameraCondition(camid=1, infrared=False, background="indoor", scene_top=(0.5,) * 3, scene_bottom=(0.3,) * 3,
                        horizon=0.6, brightness=1.0, cast=(1.0,) * 3, light_direction=0.0, black_hot=False,
                        ambient=0.3), background="beach")
    with pytest.raises(ValueError, match="no renderer for background family 'beach'"):
        _background(bogus, np.random.default_rng(0), **rng_args)


def test_pool_record_names_versions_specs_and_distances():
    record = pool_record()
    assert record["generator_version"] >= 6 and record["pool_version"] == 2
    assert [d["name"] for d in record["domains"]] == [d.name for d in POOL_DOMAINS]
    assert set(record["scenes"]) == {"park", "studio"}
    assert record["separation"]["pool_daylight"]["palette_delta_e"] >= record["thresholds"]["palette_delta_e"]
