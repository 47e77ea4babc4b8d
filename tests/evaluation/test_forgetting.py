"""Seen-average, forgetting and BWT on a hand-made session x dataset history."""
import math

import numpy as np
import pytest

from ckda_avalanche.evaluation.forgetting import (
    as_score_matrix,
    average_forgetting,
    backward_transfer,
    default_learned_at,
    forgetting_per_dataset,
    seen_average,
)

NAN = float("nan")
# rows: sessions finished (0 = before training); columns: datasets learned in sessions 1, 2, 3.
# Dataset 1 scores 0.90 zero-shot (row 1, before it is learned): must not count as "best earlier".
# Dataset 0 peaks at row 2 (0.55) after being learned at row 1 (0.50): forgetting uses the peak, BWT row 1.
HISTORY = [
    [NAN, NAN, NAN],
    [0.50, 0.90, 0.05],
    [0.55, 0.60, 0.10],
    [0.45, 0.30, 0.70],
]


def test_seen_average_uses_learned_datasets_only():
    assert seen_average(HISTORY, after=1) == pytest.approx(0.50)
    assert seen_average(HISTORY, after=2) == pytest.approx((0.55 + 0.60) / 2)
    assert seen_average(HISTORY, after=3) == pytest.approx((0.45 + 0.30 + 0.70) / 3)


def test_seen_average_before_training_averages_everything_evaluated():
    history = [[0.2, NAN, 0.4], [0.5, 0.1, 0.1]]
    assert seen_average(history, after=0) == pytest.approx(0.3)
    assert math.isnan(seen_average(HISTORY, after=0))


def test_forgetting_is_best_score_after_learning_minus_now():
    after3 = forgetting_per_dataset(HISTORY, after=3)
    assert after3[0] == pytest.approx(0.55 - 0.45)
    assert after3[1] == pytest.approx(0.60 - 0.30)  # the zero-shot 0.90 is ignored
    assert math.isnan(after3[2])  # learned in the current session
    after2 = forgetting_per_dataset(HISTORY, after=2)
    assert after2[0] == pytest.approx(0.50 - 0.55)  # negative: it improved
    assert np.isnan(after2[1:]).all()
    assert np.isnan(forgetting_per_dataset(HISTORY, after=1)).all()
    assert average_forgetting(HISTORY, after=3) == pytest.approx(((0.55 - 0.45) + (0.60 - 0.30)) / 2)
    assert math.isnan(average_forgetting(HISTORY, after=1))


def test_bwt_is_final_minus_just_learned():
    assert backward_transfer(HISTORY, after=3) == pytest.approx(((0.45 - 0.50) + (0.30 - 0.60)) / 2)
    assert backward_transfer(HISTORY, after=2) == pytest.approx(0.55 - 0.50)
    assert math.isnan(backward_transfer(HISTORY, after=1))


def test_custom_learning_order():
    # Dataset 1 learned first (row 1), dataset 0 second (row 2).
    history = [[NAN, NAN], [0.1, 0.8], [0.6, 0.5]]
    learned = [2, 1]
    assert seen_average(history, after=1, learned_at=learned) == pytest.approx(0.8)
    f = forgetting_per_dataset(history, after=2, learned_at=learned)
    assert math.isnan(f[0]) and f[1] == pytest.approx(0.3)
    assert backward_transfer(history, after=2, learned_at=learned) == pytest.approx(-0.3)


def test_missing_scores_raise_when_strict_and_are_left_out_otherwise():
    history = [row[:] for row in HISTORY]
    history[3][1] = NAN
    with pytest.raises(ValueError, match=r"R\[3, 1\]"):
        average_forgetting(history, after=3)
    with pytest.raises(ValueError, match=r"R\[3, 1\]"):
        backward_transfer(history, after=3)
    with pytest.raises(ValueError, match=r"R\[3, 1\]"):
        seen_average(history, after=3)
    assert average_forgetting(history, after=3, strict=False) == pytest.approx(0.10)
    assert backward_transfer(history, after=3, strict=False) == pytest.approx(-0.05)
    assert seen_average(history, after=3, strict=False) == pytest.approx((0.45 + 0.70) / 2)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2-D"):
        as_score_matrix([0.1, 0.2])
    with pytest.raises(ValueError, match="after=4"):
        seen_average(HISTORY, after=4)
    with pytest.raises(ValueError, match="one row per dataset"):
        backward_transfer(HISTORY, after=3, learned_at=[1, 2])
    with pytest.raises(ValueError, match="infinite"):
        as_score_matrix([[float("inf")]])
    assert default_learned_at(3).tolist() == [1, 2, 3]
