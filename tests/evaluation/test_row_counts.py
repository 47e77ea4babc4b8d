"""Every way of counting a row's values below given values (numpy sort, radix order, grouped radix pass) is exact,
and the ranker gives the stable-sort reference's results with each."""
from __future__ import annotations

import numpy as np
import pytest

from ckda_avalanche.evaluation import _row_counts
from ckda_avalanche.evaluation._row_counts import (BACKENDS, ENV_VAR, backend, counts_grouped, counts_numpy,
                                                   counts_radix)
from ckda_avalanche.evaluation.ranking import evaluate_rank

from test_ranking_ties import RULES, _assert_equal_to_reference, _tied_case, stable_sort_reference

COUNTERS = {"numpy": counts_numpy, "radix": counts_radix, "grouped": counts_grouped}


def _brute(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = dist.astype(np.float64)[:, None, :]
    v = values.astype(np.float64)[:, :, None]
    return (d < v).sum(axis=2), (d <= v).sum(axis=2)


def _cases():
    rng = np.random.default_rng(3)
    signed = np.array([-np.inf, -1.5, -0.0, 0.0, 1e-30, -1e-30, 0.25, np.inf], dtype=np.float32)
    for rows, cols in [(1, 1), (3, 2), (7, 33), (16, 500)]:
        yield rng.standard_normal((rows, cols)).astype(np.float32)
        yield (np.round(rng.random((rows, cols)) / 0.05) * 0.05).astype(np.float32)  # 21 tied values
        yield signed[rng.integers(0, len(signed), (rows, cols))]
        yield rng.standard_normal((rows, cols))  # float64: the radix backend hands over to numpy


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("block", [1 << 18, 40])  # one block, or many blocks of rows
def test_counts_equal_brute_force(name, block, monkeypatch):
    monkeypatch.setattr(_row_counts, "_BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(0)
    for dist in _cases():
        extra = np.array([-0.0, 0.0, np.inf, -np.inf, 0.1], dtype=dist.dtype)
        values = np.concatenate([dist[:, rng.integers(0, dist.shape[1], 4)],
                                 np.broadcast_to(extra, (dist.shape[0], len(extra)))], axis=1)
        less, less_equal = COUNTERS[name](dist, values)
        want_less, want_less_equal = _brute(dist, values)
        np.testing.assert_array_equal(less, want_less)
        np.testing.assert_array_equal(less_equal, want_less_equal)


@pytest.mark.parametrize("name", BACKENDS)
def test_nan_is_refused(name):
    dist = np.zeros((3, 50), dtype=np.float32)
    dist[2, 7] = np.nan
    with pytest.raises(ValueError, match="NaN distances"):
        COUNTERS[name](dist, dist[:, :2])
    dist[2, 7] = -np.float32(np.nan)  # sign bit set
    assert np.signbit(dist[2, 7])
    with pytest.raises(ValueError, match="NaN distances"):
        COUNTERS[name](dist, dist[:, :2])


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("rule", RULES)
def test_ranker_equals_stable_reference_with_each_backend(name, rule, monkeypatch):
    monkeypatch.setenv(ENV_VAR, name)
    assert backend()["backend"] == name
    d, qp, gp, qc, gc = _tied_case(seed=20 + RULES.index(rule), num_gallery=900, num_query=24)
    ref = stable_sort_reference(d, qp, gp, qc, gc, rule=rule, max_rank=30)
    _assert_equal_to_reference(evaluate_rank(d, qp, gp, qc, gc, max_rank=30, rule=rule, chunk_size=7), ref)
    free = np.random.default_rng(1).random(d.shape).astype(np.float32)
    _assert_equal_to_reference(evaluate_rank(free, qp, gp, qc, gc, max_rank=30, rule=rule),
                               stable_sort_reference(free, qp, gp, qc, gc, rule=rule, max_rank=30))


def test_backend_choice(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "quick")
    with pytest.raises(ValueError, match=r"\$CKDA_RANK_COUNTS: expected one of \['numpy', 'radix', 'grouped'\]"):
        backend()
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(_row_counts, "_choice", {})
    chosen = backend()  # probed once: the fastest on this machine
    assert chosen["source"] == "probe" and chosen["backend"] in BACKENDS
    assert chosen["backend"] == min(chosen["probe_s"], key=chosen["probe_s"].get)


@pytest.mark.parametrize("limit", [1e9, 0.0])  # never / always too large: the grouped path, then the radix hand-over
def test_grouped_counts_with_small_and_large_groups(limit, monkeypatch):
    """Keys that share their upper 16 bits and differ in the lower ones (adjacent float32 values), many values per
    group, signed zeros, infinities; several blocks, so a hand-over to radix mid-call is exercised too."""
    monkeypatch.setattr(_row_counts, "_GROUP_WORK_LIMIT", limit)
    monkeypatch.setattr(_row_counts, "_BLOCK_ELEMENTS", 600)
    rng = np.random.default_rng(5)
    base = np.float32(0.75)
    near = np.nextafter(base, np.float32(2), dtype=np.float32)
    adjacent = np.array([base, near, np.nextafter(near, np.float32(2), dtype=np.float32), -base, -near, 0.0, -0.0,
                         np.inf, -np.inf, 1e-38, -1e-38, 3.0], dtype=np.float32)
    for dist in [adjacent[rng.integers(0, len(adjacent), (9, 300))],
                 (rng.random((9, 300)) * 0.01 + 0.5).astype(np.float32),  # one upper half for ~all keys
                 rng.standard_normal((9, 300)).astype(np.float32)]:
        values = np.concatenate([dist[:, rng.integers(0, 300, 5)], np.broadcast_to(adjacent, (9, len(adjacent)))],
                                axis=1)
        less, less_equal = counts_grouped(dist, values)
        want_less, want_less_equal = _brute(dist, values)
        np.testing.assert_array_equal(less, want_less)
        np.testing.assert_array_equal(less_equal, want_less_equal)
