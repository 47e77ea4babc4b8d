"""Exemplar selection and memory shares of the replay baseline (plugins/replay.py)."""
import pytest

from ckda_avalanche.plugins.replay import select_exemplars, slot_shares
from ckda_avalanche.strategies.replay import ReplayConfig


def test_slot_shares_are_balanced_and_sum_to_total():
    assert slot_shares(10, 3) == [4, 3, 3]
    assert slot_shares(2, 4) == [1, 1, 0, 0]
    assert slot_shares(5, 0) == []


def test_select_balances_modalities_and_skips_unpaired_identities():
    # pid 7: 3 visible + 3 infrared; pid 8: 1 visible + 4 infrared; pid 9: visible only
    pids = [7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 9, 9]
    mods = [0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0]
    chosen = select_exemplars(pids, mods, num_identities=3, images_per_identity=4, seed=0)
    assert sorted(p for p, _ in chosen) == [7, 8]  # pid 9 cannot be batched by the cross-modality sampler
    by_pid = dict(chosen)
    assert sorted(mods[i] for i in by_pid[7]) == [0, 0, 1, 1]
    assert sorted(mods[i] for i in by_pid[8]) == [0, 1, 1, 1]  # one visible only: infrared fills in
    assert all(pids[i] == p for p, idx in chosen for i in idx)
    # deterministic for a seed, prefix-trimmable
    assert select_exemplars(pids, mods, num_identities=3, images_per_identity=4, seed=0) == chosen
    assert select_exemplars(pids, mods, num_identities=1, images_per_identity=4, seed=0) == chosen[:1]


def test_config_validation():
    with pytest.raises(ValueError, match="memory_size"):
        ReplayConfig(memory_size=1, images_per_identity=2)
    with pytest.raises(ValueError, match="images_per_identity"):
        ReplayConfig(images_per_identity=1)
