"""Feature maps: PCA coordinates known by construction, and the PNG is written."""
from __future__ import annotations

import numpy as np
import pytest

from ckda_avalanche.reporting.feature_map import draw_feature_maps, embed_2d


def test_pca_recovers_the_two_spread_directions_with_fixed_signs():
    t = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    s = np.array([0.5, -0.5, 0.0, -0.5, 0.5])  # uncorrelated with t, smaller spread
    feats = np.stack([np.full(5, 7.0), -t, np.zeros(5), s], axis=1)  # t along -e1, s along e3, a constant e0
    coords = embed_2d(feats)
    # first axis: +-e1 with its largest loading made positive, i.e. e1, so the coordinate is -t (centred)
    np.testing.assert_allclose(coords[:, 0], -t, atol=1e-12)
    np.testing.assert_allclose(coords[:, 1], s - s.mean(), atol=1e-12)
    with pytest.raises(ValueError, match="method"):
        embed_2d(feats, method="umap")


def test_feature_map_png_is_written_for_pca_and_tsne(tmp_path):
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(6), 6)
    mods = np.tile([0, 0, 0, 1, 1, 1], 6)
    feats = rng.normal(size=(36, 8)) + 3 * np.eye(8)[pids]
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    for method in ("pca", "tsne"):
        path = draw_feature_maps(tmp_path / f"{method}.png", features=[feats, feats[::-1].copy()],
                                 panel_labels=["after 1", "after 2"], pids=pids, modalities=mods, method=method,
                                 identities=4)
        assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="both visible and infrared"):
        draw_feature_maps(tmp_path / "x.png", features=[feats], panel_labels=["a"], pids=pids,
                          modalities=np.zeros(36, int))
