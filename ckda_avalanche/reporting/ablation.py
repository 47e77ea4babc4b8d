"""Paper-style ablation table of method variants, from the tidy CSV only.

A *variant* of a method is a method name with a bracketed suffix, e.g. ``ckda[no_msp]``, ``ckda[no_cka+no_merge]``
or ``ewc[lambda=100]``; its *base* is the part before ``[`` (``ckda``, ``ewc``) and the *full* method is the run
named exactly like the base. Whenever the runs hold at least one variant of a base, the table has, per protocol and
base, one row for the full method and one per variant with (all over seeds, as in the leaderboard):

- final seen-average mAP and Rank-1, per-dataset final mAP, average forgetting of mAP: mean, std and the half-width
  of the 95% Student-t interval (`stats.mean_interval`);
- the paired difference to the full method (``variant - full``, paired by seed; `stats.paired_difference`) of the
  final seen-average mAP and Rank-1 with its 95% interval, and the number of seed pairs.

This is the form of the CKDA paper's component ablation (Table 3 of arXiv 2511.15016), with intervals added because
the differences between components are of the order of the seed noise.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from ckda_avalanche.method_names import parse_method_name

from .leaderboard import aggregate_runs, per_run_table, write_table_files
from .precision import MixedPrecisionError
from .significance import protocol_order, seed_values
from .stats import paired_difference
from .tidy_data import Sources, load_tidy

__all__ = ["FULL_VARIANT", "split_variant", "build_ablation", "ablation_markdown", "write_ablation"]

FULL_VARIANT = "full"
"""``variant`` value of the full (base) method's row."""

_DIFF_METRICS = ("seen_mAP", "seen_Rank1")


def split_variant(method: str) -> tuple[str, str | None]:
    """``("ckda", "no_msp")`` for ``"ckda[no_msp]"``, ``("ckda", "no_cka+no_merge")`` for ``"ckda[no_cka+no_merge]"``,
    ``("ckda", None)`` for ``"ckda"``. A name without brackets is a plain method whatever its spelling (runs logged
    by other tools keep their names); a bracketed name must follow the method-name grammar
    (`ckda_avalanche.method_names`), else `MethodNameError` (a ValueError)."""
    if "[" not in method and "]" not in method:
        return method, None
    parsed = parse_method_name(method)
    return parsed.base, "+".join(parsed.items) or None


def _value_columns(runs: pd.DataFrame) -> list[str]:
    datasets = [c for c in runs.columns if c.endswith("/mAP")]
    return ["seen_mAP", "seen_Rank1", *datasets, "forgetting_mAP"]


def build_ablation(df: pd.DataFrame, *, merge_precisions: bool = False) -> pd.DataFrame:
    """Ablation rows (see module docstring), ordered by protocol (``paper`` first), base, then the full method
    and the variants alphabetically. Columns: ``protocol``, ``base``, ``variant``, ``method``, ``precision``,
    ``seeds``, ``sessions``, ``<value>_mean`` / ``_std`` / ``_ci95``, and per `_DIFF_METRICS` value
    ``diff_<value>``, ``diff_<value>_low``, ``diff_<value>_high``, plus ``diff_pairs`` (NaN for the full row and
    when the full method was not run). Empty (no rows) when no variant is present."""
    runs = per_run_table(df)
    parts = runs["method"].map(split_variant)
    runs = runs.assign(_base=[b for b, _ in parts], _variant=[v for _, v in parts])
    bases = sorted(set(runs.loc[runs["_variant"].notna(), "_base"]))
    runs = runs[runs["_base"].isin(bases)]
    if runs.empty:
        return pd.DataFrame()
    columns = _value_columns(runs)
    kept = runs[[*("method", "protocol", "run", "seed", "sessions", "precision", "draw"), *columns]]
    table = aggregate_runs(kept, merge_precisions=merge_precisions)
    rows = []
    for protocol in protocol_order(table["protocol"]):
        in_protocol = table[table["protocol"] == protocol]
        for base in bases:
            group = in_protocol[in_protocol["method"].map(lambda m, b=base: split_variant(m)[0] == b)]
            if group.empty:
                continue
            full_present = base in set(group["method"])
            labels = sorted(set(group["precision"]))
            if full_present and len(labels) > 1 and not merge_precisions:
                detail = ", ".join(f"{m}: {p}" for m, p in zip(group["method"], group["precision"]))
                raise MixedPrecisionError(
                    f"ablation of {base!r} ({protocol}): the full method and its variants ran in different "
                    f"precisions ({detail}); a paired difference across precisions mixes the ablation with the "
                    f"precision change: rerun them in one precision, or pass --merge-precisions to compare anyway")
            full = {m: seed_values(kept, base, protocol, m) for m in _DIFF_METRICS} if full_present else {}
            order = sorted(group["method"], key=lambda m: (m != base, m))
            for method in order:
                record = group[group["method"] == method].iloc[0].to_dict()
                record.update(base=base, variant=split_variant(method)[1] or FULL_VARIANT)
                pairs = float("nan")
                for metric in _DIFF_METRICS:
                    diff = None
                    if full_present and method != base:
                        diff = paired_difference(seed_values(kept, method, protocol, metric), full[metric])
                        pairs = float(diff.n)
                    record[f"diff_{metric}"] = math.nan if diff is None else diff.mean
                    record[f"diff_{metric}_low"] = math.nan if diff is None else diff.low
                    record[f"diff_{metric}_high"] = math.nan if diff is None else diff.high
                record["diff_pairs"] = pairs
                rows.append(record)
    out = pd.DataFrame.from_records(rows)
    lead = ["protocol", "base", "variant", "method", "precision", "seeds", "sessions"]
    return out[lead + [c for c in out.columns if c not in lead]]


def _pct(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{100 * mean:.1f}" if math.isnan(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _diff(row: pd.Series, metric: str) -> str:
    if row["variant"] == FULL_VARIANT:
        return "—"
    pairs = row["diff_pairs"]
    if math.isnan(pairs) or pairs == 0:
        return "–"
    text = f"{100 * row[f'diff_{metric}']:+.1f}"
    if pairs >= 2:
        text += f" [{100 * row[f'diff_{metric}_low']:+.1f}, {100 * row[f'diff_{metric}_high']:+.1f}]"
    if pairs < row["seeds"]:
        text += f" (n={int(pairs)})"
    return text


def ablation_markdown(table: pd.DataFrame) -> str:
    """One markdown table per (protocol, base) of `build_ablation` output (percent, one decimal; differences in
    points with their 95% interval)."""
    datasets = [c[: -len("/mAP_mean")] for c in table.columns if c.endswith("/mAP_mean")]
    out: list[str] = []
    for (protocol, base), group in table.groupby(["protocol", "base"], sort=False):
        header = (["Variant", "Precision", "Seeds", "Seen mAP", "Seen R1", *[f"{d} mAP" for d in datasets],
                   "Forgetting mAP", f"Δ seen mAP vs {base} [95% CI]", f"Δ seen R1 vs {base} [95% CI]"])
        out += [f"### {base} ablation ({protocol} protocol)", "",
                "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        for _, r in group.iterrows():
            name = f"{base} (full)" if r["variant"] == FULL_VARIANT else str(r["method"])
            cells = [name, str(r["precision"]), str(r["seeds"]), _pct(r["seen_mAP_mean"], r["seen_mAP_std"]),
                     _pct(r["seen_Rank1_mean"], r["seen_Rank1_std"]),
                     *[_pct(r[f"{d}/mAP_mean"], r[f"{d}/mAP_std"]) for d in datasets],
                     _pct(r["forgetting_mAP_mean"], r["forgetting_mAP_std"]),
                     _diff(r, "seen_mAP"), _diff(r, "seen_Rank1")]
            out.append("| " + " | ".join(cells) + " |")
        if FULL_VARIANT not in set(group["variant"]):
            out.append(f"\nThe full method {base!r} is not among these runs: no differences to show.")
        out.append("")
    out.append("Scores in percent (mean ± sample std over seeds), after the last session; seen = mean over the "
               "datasets learned. Forgetting: best earlier minus final mAP, averaged over datasets learned before "
               "the last session (points). Δ: variant minus full method, paired by seed (points), with its 95% "
               "Student-t interval; an interval containing 0 means no difference resolved at these seeds.")
    return "\n".join(out) + "\n"


def write_ablation(sources: Sources, out_dir: str | os.PathLike[str], *,
                   merge_precisions: bool = False) -> tuple[Path, Path] | None:
    """Write ``ablation.csv`` (fractions) and ``ablation.md`` into ``out_dir`` when the runs hold method variants;
    returns both paths, or None (nothing written) when there is no variant."""
    table = build_ablation(load_tidy(sources), merge_precisions=merge_precisions)
    if table.empty:
        return None
    return write_table_files(out_dir, "ablation", table, ablation_markdown(table))
