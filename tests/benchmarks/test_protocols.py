"""Retrieval protocols: seeded gallery sampling, SYSU search modes and shots, directions, tracklet grouping."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from ckda_avalanche.benchmarks import (
    INFRARED,
    LLCM,
    SYSUMM01,
    VISIBLE,
    EvalProtocol,
    HITSZVCM,
    PoolSelector,
    RegDB,
    ReIDSample,
    RetrievalTrial,
    TrialSpec,
    group_pool_by_tracklet,
)
from ckda_avalanche.benchmarks.protocols import sample_gallery_per_id_camera


def _pool(groups: dict[tuple[int, int], int], modality: int = VISIBLE) -> list[ReIDSample]:
    return [ReIDSample(path=f"/x/{pid}_{cam}_{k}.jpg", pid=pid, camid=cam, modality=modality)
            for (pid, cam), n in groups.items() for k in range(n)]


def _arrays(pool):
    return (np.array([s.pid for s in pool]), np.array([s.camid for s in pool]))


def test_retrieval_trial_is_frozen():
    trial = RetrievalTrial(name="t", query=np.array([0]), gallery=np.array([1]), rule="none")
    with pytest.raises(dataclasses.FrozenInstanceError):
        trial.rule = "market"


def test_single_shot_draws_one_item_per_id_camera_deterministically():
    pool = _pool({(1, 1): 5, (1, 2): 3, (2, 1): 4, (3, 4): 1})
    pids, camids = _arrays(pool)
    everything = np.arange(len(pool))
    first = sample_gallery_per_id_camera(everything, pids, camids, shot=1, seed=0)
    again = sample_gallery_per_id_camera(everything, pids, camids, shot=1, seed=0)
    np.testing.assert_array_equal(first, again)
    assert sorted(zip(pids[first], camids[first])) == [(1, 1), (1, 2), (2, 1), (3, 4)]
    assert np.all(np.diff(first) > 0)
    draws = {tuple(sample_gallery_per_id_camera(everything, pids, camids, shot=1, seed=s)) for s in range(10)}
    assert len(draws) > 1, "different seeds must give different galleries"


def test_multi_shot_draws_ten_distinct_items_or_the_whole_group():
    pool = _pool({(1, 1): 14, (1, 2): 3, (2, 5): 10})
    pids, camids = _arrays(pool)
    drawn = sample_gallery_per_id_camera(np.arange(len(pool)), pids, camids, shot=10, seed=3)
    counts = Counter(zip(pids[drawn], camids[drawn]))
    assert counts == {(1, 1): 10, (1, 2): 3, (2, 5): 10}
    assert len(set(drawn.tolist())) == len(drawn)


def test_sampling_only_uses_the_given_candidates():
    pool = _pool({(1, 1): 6, (2, 1): 6})
    pids, camids = _arrays(pool)
    candidates = np.array([1, 3, 7, 9])
    drawn = sample_gallery_per_id_camera(candidates, pids, camids, shot=10, seed=0)
    np.testing.assert_array_equal(drawn, candidates)


def test_sysu_full_protocol_search_modes_and_shots(builders, tmp_path):
    per_group = {(4, 1): 12, (4, 2): 11, (4, 4): 13, (5, 5): 14, (5, 2): 0}
    reader = SYSUMM01(builders["sysu"](tmp_path / "S", per_cam=3, per_group=per_group))
    pool = reader.test_pool
    trials = reader.protocol("full").trials(pool)
    assert len(trials) == 40
    assert {t.name for t in trials} >= {"all/single/trial0", "indoor/multi/trial9", "all/multi/trial3"}
    infrared = [i for i, s in enumerate(pool) if s.modality == INFRARED]
    for trial in trials:
        assert trial.rule == "sysu"
        assert trial.query.tolist() == infrared
        cams = {pool[i].camid for i in trial.gallery}
        counts = Counter((pool[i].pid, pool[i].camid) for i in trial.gallery)
        if trial.name.startswith("indoor/"):
            assert cams <= {1, 2}
        else:
            assert cams == {1, 2, 4, 5}
        if "/single/" in trial.name:
            assert set(counts.values()) == {1}
        else:
            assert counts[(4, 1)] == 10 and counts[(4, 2)] == 10 and counts[(5, 1)] == 3
        assert (5, 2) not in counts, "an (id, camera) without images contributes nothing"
    by_name = {t.name: t for t in trials}
    assert not np.array_equal(by_name["all/multi/trial0"].gallery, by_name["all/multi/trial1"].gallery)
    paper = reader.protocol("paper").trials(pool)
    assert [t.name for t in paper] == ["all/single/trial0"]
    np.testing.assert_array_equal(paper[0].gallery, by_name["all/single/trial0"].gallery)


def test_sysu_paper_protocol_follows_reader_options(builders, tmp_path):
    root = builders["sysu"](tmp_path / "S", per_cam=3)
    reader = SYSUMM01(root, search="indoor", shot=10, trial=4)
    (trial,) = reader.protocol().trials(reader.test_pool)
    assert trial.name == "indoor/multi/trial4"
    assert {s.camid for s in reader.gallery} == {1, 2} and len(reader.gallery) == 2 * 2 * 3


def test_regdb_directions_swap_roles(regdb_root):
    reader = RegDB(regdb_root)
    forward, backward = reader.protocol("full").trials(reader.test_pool)
    assert (forward.name, backward.name) == ("vis2ir/trial1", "ir2vis/trial1")
    np.testing.assert_array_equal(forward.query, backward.gallery)
    np.testing.assert_array_equal(forward.gallery, backward.query)
    assert {reader.test_pool[i].modality for i in forward.query} == {VISIBLE}
    assert forward.rule == backward.rule == "none"


def test_llcm_full_protocol_directions_and_trials(llcm_root):
    reader = LLCM(llcm_root)
    pool = reader.test_pool
    trials = reader.protocol("full").trials(pool)
    assert [t.name for t in trials] == [f"ir2vis/trial{t}" for t in range(10)] + [f"vis2ir/trial{t}"
                                                                                 for t in range(10)]
    for trial in trials:
        query_modality = INFRARED if trial.name.startswith("ir2vis") else VISIBLE
        assert {pool[i].modality for i in trial.query} == {query_modality}
        assert {pool[i].modality for i in trial.gallery} == {1 - query_modality}
        assert trial.query.tolist() == [i for i, s in enumerate(pool) if s.modality == query_modality]
        counts = Counter((pool[i].pid, pool[i].camid) for i in trial.gallery)
        groups = {(s.pid, s.camid) for s in pool if s.modality != query_modality}
        assert set(counts) == groups and set(counts.values()) == {1}
        assert trial.rule == "market"
    galleries = {tuple(t.gallery) for t in trials[:10]}
    assert len(galleries) > 1


def test_group_pool_by_tracklet_keeps_first_appearance_order():
    pool = [ReIDSample(path=f"/f{i}", pid=pid, camid=1, modality=VISIBLE, tracklet=t)
            for i, (pid, t) in enumerate([(7, 5), (7, 5), (3, 2), (7, 5), (3, 9)])]
    grouped, groups = group_pool_by_tracklet(pool)
    assert [s.tracklet for s in grouped] == [5, 2, 9]
    assert [s.path for s in grouped] == ["/f0", "/f2", "/f4"]
    assert [g.tolist() for g in groups] == [[0, 1, 3], [2], [4]]


def test_group_pool_by_tracklet_rejects_ungroupable_pools():
    with pytest.raises(ValueError, match="no tracklet"):
        group_pool_by_tracklet([ReIDSample(path="/a", pid=1, camid=1, modality=VISIBLE)])
    mixed = [ReIDSample(path="/a", pid=1, camid=1, modality=VISIBLE, tracklet=0),
             ReIDSample(path="/b", pid=2, camid=1, modality=VISIBLE, tracklet=0)]
    with pytest.raises(ValueError, match="mixes"):
        group_pool_by_tracklet(mixed)


def test_vcm_mean_protocol_indexes_the_grouped_pool(vcm_root):
    reader = HITSZVCM(vcm_root, tracklet_feature="mean")
    protocol = reader.protocol("full")
    assert protocol.group_by_tracklet
    grouped, groups = group_pool_by_tracklet(reader.test_pool)
    assert len(grouped) == 4 and all(len(g) == 12 for g in groups)
    forward, backward = protocol.trials(grouped)
    assert {grouped[i].modality for i in forward.query} == {INFRARED}
    assert {grouped[i].modality for i in forward.gallery} == {VISIBLE}
    np.testing.assert_array_equal(forward.query, backward.gallery)
    np.testing.assert_array_equal(forward.gallery, backward.query)
    assert [s.tracklet for s in reader.query] == [grouped[i].tracklet for i in forward.query]
    frame_reader = HITSZVCM(vcm_root)
    assert not frame_reader.protocol().group_by_tracklet
    assert [s.tracklet for s in frame_reader.query] == [s.tracklet for s in reader.query]


def test_protocol_rejects_a_pool_without_queries():
    spec = TrialSpec(name="ir2vis/trial0", rule="market", query=PoolSelector(modality=INFRARED),
                     gallery=PoolSelector(modality=VISIBLE))
    protocol = EvalProtocol(name="paper", specs=[spec])
    with pytest.raises(ValueError, match="0 query"):
        protocol.trials(_pool({(1, 1): 2}))
    with pytest.raises(ValueError, match="rule"):
        TrialSpec(name="x", rule="cmc", query=PoolSelector(), gallery=PoolSelector())
    with pytest.raises(ValueError, match="unique"):
        EvalProtocol(name="full", specs=[spec, spec])
