"""Straightforward float64 per-query reference for CMC / mAP / mINP (the definition, not the fast path).

Each row is ranked with ``np.argsort(kind="stable")`` (equal distances keep gallery order), the rule's drops are
applied to the ranked list, and AP / INP / CMC are read off the 0/1 match vector exactly as the protocol words them.
"""
from __future__ import annotations

import numpy as np


def reference_rank(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                   g_camids: np.ndarray, *, max_rank: int, rule: str) -> dict:
    distmat = np.asarray(distmat, dtype=np.float64)  # widening is exact, so order and ties are unchanged
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    all_cmc, all_ap, all_inp = [], [], []
    valid = np.zeros(len(q_pids), dtype=bool)
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        ranked_pids, ranked_cams = g_pids[order], g_camids[order]
        if rule == "market":
            keep = ~((ranked_pids == q_pids[i]) & (ranked_cams == q_camids[i]))
        elif rule == "sysu":
            keep = ~((q_camids[i] == 3) & (ranked_cams == 2))
        elif rule == "none":
            keep = np.ones(len(order), dtype=bool)
        else:
            raise ValueError(rule)
        kept_pids = ranked_pids[keep]
        match = (kept_pids == q_pids[i]).astype(np.float64)
        if match.sum() == 0:
            continue
        valid[i] = True
        positions = np.arange(1, len(match) + 1, dtype=np.float64)
        hits_so_far = np.cumsum(match)
        all_ap.append(float(np.sum(match * hits_so_far / positions) / match.sum()))
        last = np.flatnonzero(match)[-1]
        all_inp.append(float(match.sum() / (last + 1)))
        if rule == "sysu":
            _, first_index = np.unique(kept_pids, return_index=True)
            cmc_pids = kept_pids[np.sort(first_index)]
            cmc_match = (cmc_pids == q_pids[i]).astype(np.float64)
        else:
            cmc_match = match
        cmc = np.minimum(np.cumsum(cmc_match), 1.0)
        if len(cmc) < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])
        all_cmc.append(cmc[:max_rank])
    if not all_ap:
        raise ValueError("no valid query")
    return {
        "cmc": np.sum(all_cmc, axis=0) / len(all_ap),
        "mAP": float(np.mean(all_ap)),
        "mINP": float(np.mean(all_inp)),
        "ap": np.asarray(all_ap),
        "inp": np.asarray(all_inp),
        "valid": valid,
    }
