"""The modality gap: values known by construction, and a brute-force pairwise reference."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ckda_avalanche.evaluation.modality_gap import MODALITY_GAP_CENTROID, MODALITY_GAP_RATIO, modality_gap

COS, SIN = 0.5, math.sqrt(3) / 2  # infrared = visible rotated by 60 degrees towards the third axis


def _hand_case():
    e0, e1 = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    ir0, ir1 = [COS, 0.0, SIN], [0.0, COS, SIN]
    feats = torch.tensor([e0, e0, ir0, e1, ir1, ir1], dtype=torch.float64)
    pids = [0, 0, 0, 1, 1, 1]
    mods = [0, 0, 1, 0, 1, 1]
    return feats, pids, mods


def test_hand_made_features_give_the_known_ratio_and_centroid_gap():
    feats, pids, mods = _hand_case()
    gap = modality_gap(feats, pids, mods)
    # Same person: 1 - cos 60 = 0.5; other person: the vectors are orthogonal, distance 1 -> ratio 0.5.
    assert gap[MODALITY_GAP_RATIO] == pytest.approx(0.5, abs=1e-12)
    # Visible centre (2 e0 + e1) / 3 = (2/3, 1/3, 0); infrared centre (ir0 + 2 ir1) / 3 = (1/6, 1/3, sqrt(3)/2):
    # difference (1/2, 0, -sqrt(3)/2), norm 1.
    assert gap[MODALITY_GAP_CENTROID] == pytest.approx(1.0, abs=1e-12)


def test_identity_seen_in_one_modality_only_does_not_enter_the_ratio():
    feats, pids, mods = _hand_case()
    feats = torch.cat([feats, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])  # identity 2: visible only, near everyone's IR
    gap = modality_gap(feats, pids + [2], mods + [0])
    assert gap[MODALITY_GAP_RATIO] == pytest.approx(0.5, abs=1e-12)
    # but it moves the visible centre: (2 e0 + e1 + e2) / 4 = (1/2, 1/4, 1/4) against (1/6, 1/3, sqrt(3)/2)
    expected = math.sqrt((1 / 2 - 1 / 6) ** 2 + (1 / 4 - 1 / 3) ** 2 + (1 / 4 - SIN) ** 2)
    assert gap[MODALITY_GAP_CENTROID] == pytest.approx(expected, abs=1e-12)


def test_modalities_that_coincide_give_zero_and_no_identity_information_gives_one():
    base = torch.eye(4)
    same = modality_gap(torch.cat([base, base]), [0, 1, 2, 3] * 2, [0] * 4 + [1] * 4)
    assert same[MODALITY_GAP_RATIO] == pytest.approx(0.0, abs=1e-12)
    assert same[MODALITY_GAP_CENTROID] == pytest.approx(0.0, abs=1e-12)
    # every infrared item is the same vector, equally far from every visible one: ratio 1
    ir = torch.full((4, 4), 0.5)
    blind = modality_gap(torch.cat([base, ir]), [0, 1, 2, 3] * 2, [0] * 4 + [1] * 4)
    assert blind[MODALITY_GAP_RATIO] == pytest.approx(1.0, abs=1e-12)


def _brute_force_ratio(feats: np.ndarray, pids: np.ndarray, mods: np.ndarray) -> float:
    both = sorted(set(pids[mods == 0]) & set(pids[mods == 1]))

    def mean_distance(p, q):
        return np.mean([1.0 - feats[i] @ feats[j] for i in np.flatnonzero((pids == p) & (mods == 0))
                        for j in np.flatnonzero((pids == q) & (mods == 1))])

    intra = np.mean([mean_distance(p, p) for p in both])
    inter = np.mean([mean_distance(p, q) for p, q in itertools.permutations(both, 2)])
    return intra / inter


def test_random_pool_matches_pairwise_reference():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(40, 8))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    pids = rng.integers(0, 7, 40)
    mods = rng.integers(0, 2, 40)
    gap = modality_gap(torch.from_numpy(feats).float(), pids, mods)
    assert gap[MODALITY_GAP_RATIO] == pytest.approx(_brute_force_ratio(feats, pids, mods), rel=1e-5)
    centre = feats[mods == 0].mean(0) - feats[mods == 1].mean(0)
    assert gap[MODALITY_GAP_CENTROID] == pytest.approx(float(np.sqrt((centre ** 2).sum())), rel=1e-5)


def test_undefined_cases_are_nan_and_bad_input_is_refused():
    one_modality = modality_gap(torch.eye(3), [0, 1, 2], [0, 0, 0])
    assert math.isnan(one_modality[MODALITY_GAP_RATIO]) and math.isnan(one_modality[MODALITY_GAP_CENTROID])
    one_identity = modality_gap(torch.eye(3), [0, 0, 1], [0, 1, 0])
    assert math.isnan(one_identity[MODALITY_GAP_RATIO])
    # visible centre (e0 + e2) / 2, infrared e1: distance sqrt(1/4 + 1 + 1/4)
    assert one_identity[MODALITY_GAP_CENTROID] == pytest.approx(math.sqrt(1.5), abs=1e-12)
    with pytest.raises(ValueError, match="modalities must be"):
        modality_gap(torch.eye(2), [0, 1], [0, 2])
    with pytest.raises(ValueError, match="expected features"):
        modality_gap(torch.eye(2), [0], [0, 1])
