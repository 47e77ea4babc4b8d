"""How many values of each distance row lie below (and up to) given values: the one row-wide step of the ranker.

`rank_chunk` needs, for every true match ``t`` of a query, ``#{k : d_k < d_t}`` and ``#{k : d_k <= d_t}`` over the
whole gallery row. Three exact ways to get them, with identical results (only counts of values are used, so no tie
order is involved):

* ``numpy``: one value-only ``np.sort`` of the row and a batched ``torch.searchsorted``. numpy sorts float32 with
  its SIMD quicksort, whose AVX-512 variant is several times slower than its AVX2 variant on AMD Zen 4 (about 3.7x
  measured there); numpy chooses it at import time from the CPU features, and only the ``NPY_DISABLE_CPU_FEATURES``
  environment variable, read at import, switches it off.
* ``radix``: the float32 distances become order-preserving 32-bit integer keys (``-0.0`` counted equal to ``0.0``
  when searching), a two-pass LSD radix sort (``np.lexsort`` over the two 16-bit halves; numpy sorts 16-bit keys
  with a radix sort, whatever the CPU) gives each row's order, and a vectorised binary search over that order (a
  few gathers per value) gives the counts, on cache-sized blocks of rows. It costs about the same on every x86 CPU;
  float64 rows use ``numpy``.
* ``grouped``: the same keys, but only ONE 16-bit radix pass: each row is ordered by the upper half of its keys, a
  value's count is the number of keys in the groups below its upper half (binary search over that order) plus the
  keys of its own group whose lower half is below its lower half (compared element by element, that group only).
  Distances of real features spread over many groups of a few dozen keys, so this is about a fifth cheaper than
  ``radix``; rows of few distinct values (large groups) make a block switch to ``radix`` for the rest of the call.

Which one is used is decided once per process, at first use, by timing all three on a small random chunk (thread CPU
time, best of five interleaved runs, about 0.2 s), unless ``CKDA_RANK_COUNTS=numpy|radix|grouped`` names one. `backend()` reports
the choice and the probe's timings.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import torch

__all__ = ["BACKENDS", "ENV_VAR", "backend", "count_below", "counts_grouped", "counts_numpy", "counts_radix"]

BACKENDS: tuple[str, ...] = ("numpy", "radix", "grouped")
"""Ways to count (see the module docstring)."""
ENV_VAR = "CKDA_RANK_COUNTS"
"""Environment variable naming the backend (skips the probe)."""

_NAN_MESSAGE = "distmat contains NaN distances; expected finite or infinite float values"
_lock = threading.Lock()
_choice: dict[str, object] = {}


def counts_numpy(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(less, less_equal) of shape ``values.shape`` for each row of ``dist`` (C, G) and ``values`` (C, W)."""
    sorted_rows = np.ascontiguousarray(np.sort(dist, axis=1))
    if np.isnan(sorted_rows[:, -1]).any():  # np.sort puts NaN last, so this sees every NaN of the chunk
        raise ValueError(_NAN_MESSAGE)
    sorted_t = torch.from_numpy(sorted_rows)
    values_t = torch.from_numpy(np.ascontiguousarray(values, dtype=dist.dtype))
    return (torch.searchsorted(sorted_t, values_t, right=False).numpy(),
            torch.searchsorted(sorted_t, values_t, right=True).numpy())


_NEG_ZERO_KEY = np.uint32(0x7FFFFFFF)  # key of -0.0; +0.0 has the next key, 0x80000000
_POS_INF_KEY, _NEG_INF_KEY = np.uint32(0xFF800000), np.uint32(0x007FFFFF)
_BLOCK_ELEMENTS = 1 << 18  # rows per radix block: about 1 MiB of float32 (plus keys and order), cache-sized
_GROUP_WORK_LIMIT = 1.0  # grouped counts: in-group comparisons per row, in row lengths, above which radix is used


def _keys32(x: np.ndarray) -> np.ndarray:
    """Order-preserving uint32 keys of float32 values (NaN after +inf; -0.0 just below +0.0)."""
    bits = x.view(np.uint32)
    mask = bits >> np.uint32(31)
    mask *= np.uint32(0x7FFFFFFF)
    mask |= np.uint32(0x80000000)
    mask ^= bits
    return mask


def _lower_bound(keys_flat: np.ndarray, order_flat: np.ndarray, row_start: np.ndarray, n: int,
                 value_keys: np.ndarray, *, right: bool) -> np.ndarray:
    """For each value: #{i : sorted_row[i] < value} (``<=`` when ``right``), sorted_row[i] = keys[order[i]]."""
    base = np.zeros(value_keys.shape, dtype=np.int64)
    size = n
    while size > 1:
        half = size // 2
        probe = keys_flat[row_start + order_flat[row_start + base + half - 1]]
        go = probe <= value_keys if right else probe < value_keys
        base += np.where(go, half, 0)
        size -= half
    last = keys_flat[row_start + order_flat[row_start + base]]
    return base + (last <= value_keys if right else last < value_keys)


def _radix_block(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = _keys32(dist)
    halves = keys.view(np.uint16).reshape(*keys.shape, 2)
    low, high = (halves[..., 0], halves[..., 1]) if np.little_endian else (halves[..., 1], halves[..., 0])
    order = np.lexsort((low, high), axis=1)  # last key is primary; 16-bit keys sort by radix
    rows, n = dist.shape
    keys_flat, order_flat = keys.reshape(-1), order.reshape(-1)
    every_row = np.arange(rows)
    if ((keys[every_row, order[:, -1]] > _POS_INF_KEY).any()  # NaN sorts after +inf, or before -inf when negative
            or (keys[every_row, order[:, 0]] < _NEG_INF_KEY).any()):
        raise ValueError(_NAN_MESSAGE)
    row_start = (np.arange(rows, dtype=np.int64) * n)[:, None]
    value_keys = _keys32(values)
    zero = value_keys == _NEG_ZERO_KEY
    zero |= value_keys == _NEG_ZERO_KEY + np.uint32(1)
    # -0.0 == +0.0: "< 0" counts below -0.0's key, "<= 0" up to +0.0's key
    less = _lower_bound(keys_flat, order_flat, row_start, n, np.where(zero, _NEG_ZERO_KEY, value_keys), right=False)
    less_equal = _lower_bound(keys_flat, order_flat, row_start, n,
                              np.where(zero, _NEG_ZERO_KEY + np.uint32(1), value_keys), right=True)
    return less, less_equal


def counts_radix(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`counts_numpy` for float32 rows by a 2 x 16-bit radix order and a binary search (other dtypes: numpy),
    in cache-sized blocks of rows."""
    return _by_blocks(_radix_block, dist, values)


def _by_blocks(block_counts, dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``block_counts`` over cache-sized blocks of float32 rows (other dtypes and empty rows: `counts_numpy`)."""
    if dist.dtype != np.float32 or dist.shape[1] == 0:
        return counts_numpy(dist, values)
    dist = np.ascontiguousarray(dist)
    values = np.ascontiguousarray(values, dtype=np.float32)
    step = max(1, _BLOCK_ELEMENTS // dist.shape[1])
    if step >= dist.shape[0]:
        return block_counts(dist, values)
    less = np.empty(values.shape, dtype=np.int64)
    less_equal = np.empty(values.shape, dtype=np.int64)
    for start in range(0, dist.shape[0], step):
        sl = slice(start, start + step)
        less[sl], less_equal[sl] = block_counts(dist[sl], values[sl])
    return less, less_equal


def _grouped_block(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`counts_grouped` for one block of rows: each row ordered by the upper 16 bits of its keys (one radix pass);
    a value's count is the number of keys in the groups below its upper half (binary search) plus the keys of its
    own group whose lower half is below its lower half (compared element by element, the group only). None when
    the matched groups are so large that comparing them costs more than the radix order (many tied values)."""
    if np.isnan(dist).any():
        raise ValueError(_NAN_MESSAGE)
    keys = _keys32(dist)
    halves = keys.view(np.uint16).reshape(*keys.shape, 2)
    low, high = (halves[..., 0], halves[..., 1]) if np.little_endian else (halves[..., 1], halves[..., 0])
    high = np.ascontiguousarray(high)
    order = np.argsort(high, axis=1, kind="stable").reshape(-1)  # 16-bit keys sort by radix: one pass
    high, low = high.reshape(-1), np.ascontiguousarray(low).reshape(-1)
    rows, n = dist.shape
    row_start = (np.arange(rows, dtype=np.int64) * n)[:, None]
    value_keys = _keys32(values)
    zero = value_keys == _NEG_ZERO_KEY
    zero |= value_keys == _NEG_ZERO_KEY + np.uint32(1)
    # "< v" and "<= v" as "< bound": -0.0 and +0.0 count below -0.0's key, and up to +0.0's key (then + 1)
    bound = np.concatenate([np.where(zero, _NEG_ZERO_KEY, value_keys),
                            np.where(zero, _NEG_ZERO_KEY + np.uint32(1), value_keys)], axis=1).astype(np.int64)
    bound[:, value_keys.shape[1]:] += 1  # key <= k  <=>  key < k + 1 (int64: no overflow)
    bound_high, bound_low = bound >> 16, bound & 0xFFFF
    edges = _lower_bound(high, order, row_start, n, np.concatenate([bound_high, bound_high + 1], axis=1),
                         right=False)
    start, size = edges[:, :bound.shape[1]], edges[:, bound.shape[1]:] - edges[:, :bound.shape[1]]
    width = int(size.max(initial=0))
    if width * bound.shape[1] > _GROUP_WORK_LIMIT * n:  # huge groups (rows of few distinct values): radix order
        return None
    offset = np.arange(width)
    inside = offset < size[..., None]
    members = row_start[..., None] + order[row_start[..., None] + np.where(inside, start[..., None] + offset, 0)]
    hit = low[members] < bound_low[..., None]
    hit &= inside
    counts = start + np.count_nonzero(hit, axis=-1)
    return counts[:, :value_keys.shape[1]], counts[:, value_keys.shape[1]:]


def counts_grouped(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`counts_numpy` for float32 rows by one 16-bit radix pass that groups each row by the upper half of its keys,
    and comparisons of the lower halves inside the matched group only (other dtypes: numpy), in cache-sized blocks
    of rows. Once a block's matched groups are too large (rows of few distinct values), that block and the rest of
    the call use `counts_radix`'s full order."""
    state = {"radix": False}

    def block(dist_block: np.ndarray, values_block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = None if state["radix"] else _grouped_block(dist_block, values_block)
        if counts is None:
            state["radix"] = True
            return _radix_block(dist_block, values_block)
        return counts

    return _by_blocks(block, dist, values)


_COUNTERS = {"numpy": counts_numpy, "radix": counts_radix, "grouped": counts_grouped}


def _probe() -> dict[str, object]:
    rng = np.random.default_rng(0)
    dist = rng.random((32, 16384), dtype=np.float32)  # rows as wide as a Market-sized gallery
    values = dist[:, :16].copy()
    best = {name: float("inf") for name in BACKENDS}
    for _ in range(5):  # interleaved, best of five
        for name in BACKENDS:
            # CPU time of this thread (every backend counts in the calling thread here): other processes on a
            # shared machine do not enter it, as they do a wall-clock time
            start = time.thread_time()
            _COUNTERS[name](dist, values)
            best[name] = min(best[name], time.thread_time() - start)
    chosen = min(BACKENDS, key=lambda name: best[name])
    return {"backend": chosen, "source": "probe", "probe_s": best}


def backend() -> dict[str, object]:
    """The backend in use: ``{"backend": name, "source": "env"|"probe", "probe_s": {name: seconds}}`` (probing once
    per process; ``CKDA_RANK_COUNTS`` overrides)."""
    requested = os.environ.get(ENV_VAR)
    if requested:
        if requested not in BACKENDS:
            raise ValueError(f"${ENV_VAR}: expected one of {list(BACKENDS)}, got {requested!r}")
        return {"backend": requested, "source": "env", "probe_s": {}}
    with _lock:
        if not _choice:
            _choice.update(_probe())
        return dict(_choice)


def count_below(dist: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(less, less_equal): per row of ``dist`` (C, G), how many entries are < and <= each of ``values`` (C, W)
    (int64, shape of ``values``), with the backend of `backend`. Raises ValueError on NaN distances."""
    return _COUNTERS[str(backend()["backend"])](dist, values)
