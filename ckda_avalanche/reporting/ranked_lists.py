"""Ranked-list pictures: what a model retrieves for chosen queries, session after session (``ckda show``).

`ranked_rows` is the pure part: for the queries of one retrieval trial it returns the top-k of the gallery **as the
metrics rank it**: the gallery columns a query is ranked against and the items it drops come from the ranking code
itself (`evaluation.ranking`: ``"market"`` drops the query's identity seen by the query's camera, ``"sysu"`` drops
every camera-2 item for a camera-3 query), ties keep gallery order (``np.argsort(kind="stable")``), and the rank of
the first true match and the AP are those of `evaluation.chunk_ranks.rank_chunk`, the kernel behind every mAP and
CMC number (for the SYSU rule the CMC rank counts each gallery identity once, as the metric does).

`choose_queries` picks the rows reproducibly: ``random`` (seeded, among the queries valid in every session shown),
``rank-change`` (largest change of the first-true-match rank between two sessions) or ``ap-change`` (largest
change of AP). `draw_ranked_grid` writes one PNG: a row per query, a block per session (the query with its
modality, then its top-k with a green frame for a true match and a red one for a false match, the distance under
each item, and the first-match rank and AP above the block). Images are composed into one canvas (one ``imshow``),
so a grid of 8 queries x 10 results x 4 sessions draws in about a second.
"""
from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ckda_avalanche.evaluation.chunk_ranks import rank_chunk  # noqa: E402
from ckda_avalanche.evaluation.ranking import RULES, query_groups  # noqa: E402

__all__ = ["PICKS", "RankedRow", "choose_queries", "draw_ranked_grid", "ranked_rows"]

PICKS: tuple[str, ...] = ("random", "rank-change", "ap-change")
"""How `choose_queries` picks the queries shown."""


@dataclass(frozen=True)
class RankedRow:
    """One query's ranked list, as the metrics rank it."""

    query: int
    """Index of the query in the trial's query list."""
    gallery: np.ndarray
    """Top-k gallery indices (into the trial's gallery list), best first, dropped items left out."""
    distances: np.ndarray
    """Their distances."""
    matches: np.ndarray
    """True where the item has the query's identity (green frame), False otherwise (red frame)."""
    first_match_rank: int
    """1-based rank of the first true match as the CMC counts it (0: no true match left after the rule's drops)."""
    ap: float
    """Average precision of the query (0.0 when it has no true match left)."""

    @property
    def valid(self) -> bool:
        """Whether the query has a true match left (the metrics average only those)."""
        return self.first_match_rank > 0


def ranked_rows(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                g_camids: np.ndarray, *, rule: str, top_k: int,
                queries: Sequence[int] | None = None) -> list[RankedRow]:
    """The ranked lists of ``queries`` (default: all, in order) of a ``(Q, G)`` distance matrix under ``rule``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    dist = np.asarray(distmat)
    if dist.ndim != 2 or dist.shape[1] == 0:
        raise ValueError(f"distmat must be a (num_query, num_gallery) array with a gallery, got {dist.shape}")
    qp, qc = np.asarray(q_pids, dtype=np.int64), np.asarray(q_camids, dtype=np.int64)
    gp, gc = np.asarray(g_pids, dtype=np.int64), np.asarray(g_camids, dtype=np.int64)
    if len(qp) != dist.shape[0] or len(qc) != dist.shape[0] or len(gp) != dist.shape[1] or len(gc) != dist.shape[1]:
        raise ValueError(f"ids / cameras do not match the distance matrix of shape {dist.shape}")
    wanted = np.arange(dist.shape[0]) if queries is None else np.asarray(queries, dtype=np.int64)
    if len(wanted) and (wanted.min() < 0 or wanted.max() >= dist.shape[0]):
        raise ValueError(f"query indices must lie in [0, {dist.shape[0]}), got {wanted.tolist()}")
    found: dict[int, RankedRow] = {}
    for rows, view in query_groups(rule, qc, gp, gc):  # the ranking's own column drops (SYSU rule)
        members = wanted if rows is None else wanted[np.isin(wanted, rows)]
        if not len(members):
            continue
        columns = np.arange(len(gp)) if view.columns is None else view.columns
        block = dist[members][:, columns]
        ranks = rank_chunk(block, qp[members], qc[members], view, drop_same_camera=rule == "market",
                           dedup_identities=rule == "sysu")
        for i, q in enumerate(members.tolist()):
            kept = np.ones(len(columns), dtype=bool)
            if rule == "market":  # the same drop rank_chunk applies: the query's identity seen by its camera
                kept &= ~((view.pids == qp[q]) & (view.camids == qc[q]))
            order = np.argsort(block[i], kind="stable")
            order = order[kept[order]][:top_k]
            found[q] = RankedRow(query=q, gallery=columns[order], distances=block[i, order],
                                 matches=view.pids[order] == qp[q], first_match_rank=int(ranks.cmc_rank[i]),
                                 ap=float(ranks.ap[i]))
    return [found[q] for q in wanted.tolist()]


def choose_queries(per_session: Sequence[Sequence[RankedRow]], *, count: int, pick: str = "random",
                   seed: int = 0, between: tuple[int, int] = (0, -1)) -> list[int]:
    """Positions (into the row lists) of ``count`` queries to show, valid in every session.

    ``per_session[s]`` holds every query's `RankedRow` for session ``s`` (same query order in every session).
    ``random``: a seeded draw, shown in query order; ``rank-change`` / ``ap-change``: the largest absolute change
    of the first-match rank / AP between sessions ``between`` (positions in ``per_session``), largest first, ties
    by query order.
    """
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {PICKS}, got {pick!r}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not per_session or len({len(rows) for rows in per_session}) != 1:
        raise ValueError("choose_queries needs the same queries in every session")
    valid = np.all([[r.valid for r in rows] for rows in per_session], axis=0)
    candidates = np.flatnonzero(valid)
    if not len(candidates):
        raise ValueError("no query has a true match left in its gallery in every session")
    if pick == "random":
        rng = np.random.default_rng(seed)
        return sorted(rng.choice(candidates, size=min(count, len(candidates)), replace=False).tolist())
    first, last = (per_session[between[0]], per_session[between[1]])
    if pick == "rank-change":
        change = np.array([abs(last[q].first_match_rank - first[q].first_match_rank) for q in candidates], float)
    else:
        change = np.array([abs(last[q].ap - first[q].ap) for q in candidates])
    order = np.argsort(-change, kind="stable")
    return candidates[order[:count]].tolist()


_GREEN, _RED, _GREY = (np.array([0, 170, 0], np.uint8), np.array([220, 0, 0], np.uint8),
                       np.array([90, 90, 90], np.uint8))


def draw_ranked_grid(path: str | Path, *, rows: Sequence[Sequence[RankedRow]], session_labels: Sequence[str],
                     query_labels: Sequence[str], row_labels: Sequence[str],
                     image: Callable[[str, int], np.ndarray], title: str,
                     tile: tuple[int, int] = (64, 32), border: int = 3, dpi: int = 100) -> Path:
    """Write the grid PNG. ``rows[s][i]`` is query ``i``'s `RankedRow` in session ``s``; ``image(kind, index)``
    returns the ``tile``-sized uint8 RGB picture of the query (``kind="query"``) or gallery item (``"gallery"``);
    ``query_labels[i]`` is written under query ``i`` (its modality), ``row_labels[i]`` in its row's header."""
    sessions, num = len(rows), len(query_labels)
    if sessions != len(session_labels) or any(len(r) != num for r in rows) or not num or len(row_labels) != num:
        raise ValueError("rows must hold one RankedRow per query for every session label")
    th, tw = tile
    k = max(len(r.gallery) for session in rows for r in session)
    cell_w, cell_h, gap = tw + 2 * border + 4, th + 2 * border + 14, 18  # room for the distance under each
    header = 16
    block_w = (k + 1) * cell_w + 6
    width = sessions * block_w + (sessions - 1) * gap
    height = num * (cell_h + header)
    canvas = np.full((height, width, 3), 255, np.uint8)
    texts: list[tuple[float, float, str, str, float]] = []

    def put(x: int, y: int, picture: np.ndarray, colour: np.ndarray) -> None:
        canvas[y:y + th + 2 * border, x:x + tw + 2 * border] = colour
        canvas[y + border:y + border + th, x + border:x + border + tw] = picture

    for s in range(sessions):
        x0 = s * (block_w + gap)
        for i in range(num):
            row = rows[s][i]
            y0 = i * (cell_h + header) + header
            put(x0, y0, image("query", row.query), _GREY)
            texts.append((x0 + cell_w / 2 - 2, y0 + th + 2 * border + 1, query_labels[i], "black", 6))
            rank = f"first match: rank {row.first_match_rank}" if row.valid else "no true match"
            texts.append((x0 + block_w / 2, y0 - header + 2, f"{session_labels[s]}  |  {row_labels[i]}"
                          f"  |  {rank}, AP {100 * row.ap:.0f}%", "black", 7))
            for j, (g, d, m) in enumerate(zip(row.gallery, row.distances, row.matches)):
                x = x0 + (j + 1) * cell_w + 6
                put(x, y0, image("gallery", int(g)), _GREEN if m else _RED)
                texts.append((x + cell_w / 2 - 2, y0 + th + 2 * border + 1, f"{d:.2f}",
                              "#006400" if m else "#b00000", 6))
    lines = textwrap.wrap(title, width=max(40, width // 7)) or [""]  # about 7 pixels per character at 9 pt
    top = 8 + 14 * len(lines)
    fig = plt.figure(figsize=(width / dpi, (height + top) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, height / (height + top)))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for x, y, text, colour, size in texts:
        ax.text(x, y, text, ha="center", va="top", fontsize=size, color=colour)
    fig.text(0.5, 1 - 4 / (height + top), "\n".join(lines), ha="center", va="top", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    # A 256-colour palette PNG: a third of the size of matplotlib's RGBA file, and faster to write.
    Image.fromarray(pixels).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
