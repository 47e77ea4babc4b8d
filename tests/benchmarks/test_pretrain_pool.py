"""The pretraining pool shares nothing with the benchmark and renders deterministically."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from ckda_avalanche.benchmarks.synthetic import DOMAINS
from ckda_avalanche.benchmarks.synthetic.pretrain_pool import (
    POOL_DOMAINS,
    check_disjoint_from_benchmark,
    render_pretrain_pool,
)


def test_pool_domains_share_no_palette_colour_background_or_nir_link_with_the_benchmark():
    bench_colours = {c for d in DOMAINS.values() for c in d.palette}
    bench_backgrounds = {f for d in DOMAINS.values() for f in d.background_families + d.outdoor_background_families}
    for pool in POOL_DOMAINS:
        assert not set(pool.palette) & bench_colours
        assert not (set(pool.background_families) | set(pool.outdoor_background_families)) & bench_backgrounds
        assert pool.nir_channel_weights not in {d.nir_channel_weights for d in DOMAINS.values()}
        assert pool.name not in DOMAINS
    check_disjoint_from_benchmark()  # the package's own guard agrees


def test_overlap_guard_names_the_shared_colour():
    leaky = dataclasses.replace(POOL_DOMAINS[0], palette=(DOMAINS["sysu"].palette[0], (0.5, 0.1, 0.9)))
    with pytest.raises(ValueError, match="pool_daylight.*overlaps the benchmark"):
        check_disjoint_from_benchmark((leaky,))


def test_counts_shapes_and_modalities_by_hand():
    pool = render_pretrain_pool(num_ids=4, cameras_per_id=2, images_per_camera=3, img_size=(32, 16), seed=1)
    assert len(pool) == 4 * 2 * 3
    assert pool.images.shape == (24, 3, 32, 16) and pool.images.dtype == torch.uint8
    assert pool.labels.tolist() == [i for i in range(4) for _ in range(6)]
    assert pool.modality.eq(0).all()
    both = render_pretrain_pool(num_ids=4, cameras_per_id=2, images_per_camera=3, img_size=(32, 16), seed=1,
                                modalities="both")
    assert len(both) == 4 * 3 * 3 and int(both.modality.sum()) == 4 * 3
    infrared = both.images[both.modality == 1]
    assert torch.equal(infrared[:, 0], infrared[:, 1]) and torch.equal(infrared[:, 1], infrared[:, 2])


def test_deterministic_per_seed_and_different_across_seeds():
    a = render_pretrain_pool(num_ids=3, img_size=(32, 16), seed=0)
    b = render_pretrain_pool(num_ids=3, img_size=(32, 16), seed=0)
    c = render_pretrain_pool(num_ids=3, img_size=(32, 16), seed=1)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="modalities"):
        render_pretrain_pool(num_ids=3, img_size=(32, 16), modalities="infrared")
    with pytest.raises(ValueError, match="num_ids >= 2"):
        render_pretrain_pool(num_ids=1, img_size=(32, 16))
