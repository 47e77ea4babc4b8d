"""The decoded-image cache budget of one run when several runs share a node.

Every run process keeps its own decoded-image cache (`image_store`), up to the node's budget: ``$CKDA_DATA_CACHE_LIMIT``
or a quarter of the node's memory (`image_store.default_cache_limit`). When an executor places ``runs_per_node``
runs on one node at the same time (the Ray executor computes it from the node's CPUs and GPUs and each run's share),
each run gets ``budget // runs_per_node``, so the caches of the packed runs together stay within the node's budget
(8 packed runs on a 128 GiB node: 4 GiB each, 32 GiB in all, instead of 8 x 32 GiB). A run that gets less than its
splits need caches what fits (``cache="auto"``) and reads the rest from disk; results never change.
"""
from __future__ import annotations

from ckda_avalanche.benchmarks.image_store import default_cache_limit

__all__ = ["per_run_cache_limit"]


def per_run_cache_limit(runs_per_node: int, node_limit: int | None = None) -> int:
    """The cache limit in bytes of one of ``runs_per_node`` concurrent runs on a node whose budget is ``node_limit``
    (default: `image_store.default_cache_limit`)."""
    if int(runs_per_node) < 1:
        raise ValueError(f"runs_per_node: expected >= 1, got {runs_per_node}")
    budget = default_cache_limit() if node_limit is None else int(node_limit)
    return budget // int(runs_per_node)
