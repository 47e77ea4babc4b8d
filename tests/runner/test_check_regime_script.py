"""`benchmarks/check_regime.py --subsets`: how often the seed-spread criterion holds on every K-seed subset,
checked on hand-computed sample standard deviations."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("check_regime")


def test_spread_over_three_seed_subsets_by_hand(script):
    # a: subsets with seed 3 hold {0, 0, 3}: mean 1, variance (1 + 1 + 4) / 2 = 3, std 1.73 > 1.5; (0, 1, 2): std 0.
    # b: (0, 1, 2) and (1, 2, 3) have std 1; (0, 1, 3) and (0, 2, 3) have variance 7/3, std 1.53 > 1.5.
    # Seed 4 of b is not shared by a, so it is in no subset.
    seen = {"a": {0: 0.0, 1: 0.0, 2: 0.0, 3: 3.0}, "b": {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0, 4: 50.0}}
    count, every, own = script.spread_over_subsets(seen, 3)
    assert (count, every, own) == (4, 1, {"a": 1, "b": 2})
    assert script.spread_over_subsets(seen, 3, limit=1.6) == (4, 1, {"a": 1, "b": 4})  # a still fails 3 of 4
    # All four: a has mean 0.75, variance (3 x 0.5625 + 5.0625) / 3 = 2.25, std exactly 1.5 (<= holds); b 5/3, 1.29.
    assert script.spread_over_subsets(seen, 4) == (1, 1, {"a": 1, "b": 1})


def test_subset_size_outside_the_shared_seeds_is_refused(script):
    seen = {"a": {0: 1.0, 1: 2.0, 2: 3.0}, "b": {1: 1.0, 2: 2.0, 3: 3.0}}
    with pytest.raises(ValueError, match=r"--subsets 3: expected 2..2 \(the seeds every method has: \[1, 2\]\)"):
        script.spread_over_subsets(seen, 3)
    with pytest.raises(ValueError, match="--subsets 1"):
        script.spread_over_subsets(seen, 1)
