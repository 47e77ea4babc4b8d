"""Agreement of the method order between synthetic draws: Kendall's tau-b with a bootstrap interval.

The synthetic benchmark is one draw of a generator (its seed, ``run_config.synthetic_seed``). Runs of several draws
pool into one leaderboard with draw x seed as the replicates (`tidy_data.load_tidy` names the draw of every row).
Whether the *order* of the methods is a property of the benchmark or of one draw is read here: for every protocol
and every pair of draws (a, b), over the methods run in both,

- each draw's method order is the order of the methods' mean final seen mAP over that draw's seeds;
- ``tau`` is Kendall's tau-b between the two vectors of means (`kendall_tau_b`: +1 same order, -1 reversed, 0
  unrelated; ties, e.g. two methods with the same mean, count as in tau-b);
- its 95% interval is a percentile bootstrap over seeds within each draw: each of ``B`` replicates (default
  2000, numpy generator seeded with 0, so the interval is reproducible) redraws, independently in each draw, that
  draw's seeds with replacement (a redrawn seed carries every method's score of that seed, so the seed-to-seed
  variation the methods share stays shared) and recomputes the means and tau; the interval is the 2.5% and 97.5%
  quantiles of the B values. A method without a redrawn seed in that draw is left out of that replicate's tau.

With few seeds per draw (five) the interval is wide where methods lie close together; it is a statement about how
stable the order is under the seed noise of each draw, not about other generator settings.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .significance import RANK_METRIC, protocol_order

__all__ = ["BOOTSTRAP_REPLICATES", "BOOTSTRAP_SEED", "kendall_tau_b", "draw_orders", "draw_agreement",
           "draw_agreement_markdown"]

BOOTSTRAP_REPLICATES = 2000
"""Bootstrap replicates of the tau interval."""
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap's numpy generator."""


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences: ``(C - D) / sqrt((n0 - n1) (n0 - n2))`` with C / D the
    concordant / discordant pairs, ``n0 = n (n - 1) / 2`` and n1 / n2 the pairs tied in x / in y (Kendall 1945).
    NaN when fewer than two values or when one sequence is constant."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau_b: sequences of different lengths ({len(x)} and {len(y)})")
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0:
            ties_x += 1
        if dy == 0:
            ties_y += 1
        if dx != 0 and dy != 0:
            if (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    n0 = len(x) * (len(x) - 1) // 2
    denominator = math.sqrt((n0 - ties_x) * (n0 - ties_y))
    return float("nan") if denominator == 0 else (concordant - discordant) / denominator


def _means(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per method (columns of ``values``, rows = seeds), the mean over the (possibly repeated) seed ``rows``
    that the method has (NaN when it has none of them)."""
    chosen = values[rows]
    counts = (~np.isnan(chosen)).sum(axis=0)
    sums = np.nansum(chosen, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def draw_orders(runs: pd.DataFrame, protocol: str) -> dict[int, list[str]]:
    """Per draw, the methods of ``protocol`` from best to worst mean final seen mAP (`leaderboard.per_run_table`)."""
    chosen = runs[runs["protocol"] == protocol]
    out = {}
    for draw, group in chosen.groupby("draw", sort=True):
        means = group.groupby("method")[RANK_METRIC].mean().sort_values(ascending=False, kind="stable")
        out[int(draw)] = [str(m) for m in means.index]
    return out


def draw_agreement(runs: pd.DataFrame, *, replicates: int = BOOTSTRAP_REPLICATES,
                   seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """One row per protocol and pair of draws (see module docstring): ``protocol``, ``draw_a``, ``draw_b``,
    ``methods`` (number in both), ``tau``, ``tau_low``, ``tau_high``, ``replicates``, ``order_a``, ``order_b``
    (methods best first, joined by ``>``). Empty when ``runs`` holds fewer than two draws."""
    if "draw" not in runs.columns or runs["draw"].nunique() < 2:
        return pd.DataFrame()
    rows = []
    for protocol in protocol_order(runs["protocol"]):
        chosen = runs[runs["protocol"] == protocol]
        tables = {int(d): g.pivot_table(index="seed", columns="method", values=RANK_METRIC, aggfunc="mean")
                  for d, g in chosen.groupby("draw", sort=True)}
        orders = draw_orders(runs, protocol)
        for a, b in itertools.combinations(sorted(tables), 2):
            methods = sorted(set(tables[a].columns) & set(tables[b].columns))
            row: dict[str, object] = {"protocol": protocol, "draw_a": a, "draw_b": b, "methods": len(methods),
                                      "order_a": " > ".join(m for m in orders[a] if m in methods),
                                      "order_b": " > ".join(m for m in orders[b] if m in methods)}
            if len(methods) < 2:
                row.update(tau=math.nan, tau_low=math.nan, tau_high=math.nan, replicates=0)
                rows.append(row)
                continue
            ta = tables[a][methods].to_numpy(dtype=np.float64)  # seeds x methods, NaN where not run
            tb = tables[b][methods].to_numpy(dtype=np.float64)
            row["tau"] = kendall_tau_b(list(_means(ta, np.arange(len(ta)))), list(_means(tb, np.arange(len(tb)))))
            rng = np.random.default_rng(seed)
            taus = []
            for _ in range(replicates):
                ma = _means(ta, rng.integers(0, len(ta), size=len(ta)))
                mb = _means(tb, rng.integers(0, len(tb), size=len(tb)))
                both = ~np.isnan(ma) & ~np.isnan(mb)
                if both.sum() >= 2:
                    taus.append(kendall_tau_b(list(ma[both]), list(mb[both])))
            taus = [t for t in taus if not math.isnan(t)]
            row["tau_low"] = float(np.quantile(taus, 0.025)) if taus else math.nan
            row["tau_high"] = float(np.quantile(taus, 0.975)) if taus else math.nan
            row["replicates"] = len(taus)
            rows.append(row)
    return pd.DataFrame.from_records(rows)


def draw_agreement_markdown(table: pd.DataFrame) -> str:
    """A markdown section for `draw_agreement` output (empty string for an empty table)."""
    if table.empty:
        return ""
    lines = ["## Method order across draws", "",
             "| Protocol | Draws | Methods | Kendall's tau-b [95% bootstrap CI] | Order in the first draw | "
             "Order in the second draw |", "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        tau = "–" if math.isnan(r["tau"]) else f"{r['tau']:+.2f}"
        if not math.isnan(r["tau_low"]):
            tau += f" [{r['tau_low']:+.2f}, {r['tau_high']:+.2f}]"
        lines.append(f"| {r['protocol']} | {r['draw_a']} vs {r['draw_b']} | {r['methods']} | {tau} | "
                     f"{r['order_a']} | {r['order_b']} |")
    lines += ["", "Order: methods by mean final seen mAP over the draw's seeds, best first. tau-b: +1 the same "
              "order in both draws, -1 reversed. Interval: percentile bootstrap over seeds within each draw "
              f"({BOOTSTRAP_REPLICATES} replicates, seeded)."]
    return "\n".join(lines) + "\n"
