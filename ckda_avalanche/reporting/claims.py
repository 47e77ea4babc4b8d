"""The paper check: every claim of the CKDA paper as a paired difference of final seen mAP, with a verdict.

A *claim* says that one arm beats another: CKDA with a component beats CKDA without it (the ablations of arXiv
2511.15016, Table 3), or CKDA beats a baseline. Each claim is measured on the runs given, from the tidy CSV only:

- the *difference* is ``better - worse`` of the final seen-average mAP, paired by replicate (the same seed, and the
  same synthetic draw when several are pooled; `significance.seed_values`), with its 95% Student-t interval
  (`stats.paired_difference`);
- the *verdict*: ``supported`` when the interval lies above 0 (the claimed direction), ``contradicted`` when it
  lies below 0, ``not resolved`` when it contains 0 or fewer than two replicates pair up, and ``missing`` (naming the
  runs to make) when an arm was not run.

*Readings.* The published setting is the plain method names (``ckda``, ``ckda[no_msp]``, ...). docs/method.md §4
names alternative readings of CKA (`READINGS`): the sharper affinity s = 10 (``sharp_affinity``), the affinity
helper's own default s = 100 (``affinity_scale=100``), the normalised student feature (``normalized_student``)
and the last two together at s = 10.
Under a reading, both CKDA arms carry the reading's items (``ckda[sharp_affinity]`` against
``ckda[no_msp+sharp_affinity]``; variant names in the canonical spelling of `ckda_avalanche.method_names`: items
sorted, joined by ``+``); a baseline arm has no CKDA reading and stays the plain baseline, and so does
``ckda[no_cka]``: a reading only changes CKA, which that arm switches off. A reading with no run at all is reported
in one line instead of one ``missing`` row per claim.

``joint`` (training on every session's data at once) is the upper bound of a lifelong method, not a claim: its
difference to CKDA is shown with the verdict ``upper bound``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ckda_avalanche.method_names import format_method_name

from .leaderboard import per_run_table, write_table_files
from .significance import protocol_order, seed_values
from .stats import paired_difference
from .tidy_data import Sources, load_tidy

__all__ = ["Claim", "CLAIMS", "READINGS", "BASELINES", "UPPER_BOUND", "VERDICTS", "variant_name", "verdict",
           "build_claims", "claims_markdown", "write_claims"]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: arm ``better`` beats arm ``worse`` in final seen mAP."""

    key: str
    """Short identifier (CSV column ``claim``)."""
    text: str
    """The claim in words."""
    better: tuple[str, ...]
    """Variant items of the CKDA arm claimed better (empty: CKDA itself)."""
    worse: tuple[str, ...] = ()
    """Variant items of the CKDA arm claimed worse (the ablation), when ``baseline`` is empty."""
    baseline: str = ""
    """The worse arm is this baseline method (no reading applies to it)."""
    is_claim: bool = True
    """False for the upper bound (shown, not judged)."""
    worse_has_no_cka: bool = False
    """The worse arm switches CKA off, so a reading of CKA (which changes nothing else) has nothing to act on there:
    under every reading the published-setting run of that arm stands for it (``ckda[no_cka]``, not
    ``ckda[no_cka+sharp_affinity]``; the CKDA strategy builds no CKA plugin at all when CKA's weights are zero)."""


BASELINES: tuple[str, ...] = ("finetune", "lwf", "ewc", "replay", "lstkc", "dkp", "l2p")
"""The lifelong baselines CKDA is claimed to beat."""
UPPER_BOUND = "joint"
"""The upper bound (shown with its difference, never judged)."""

CLAIMS: tuple[Claim, ...] = (
    Claim("msp", "MSP helps", (), ("no_msp",)),
    Claim("mcp", "MCP helps", (), ("no_mcp",)),
    Claim("mcp_instance_norm", "MCP's instance norm helps", (), ("no_mcp_instance_norm",)),
    Claim("mcp_gates", "MCP's gates help", (), ("no_mcp_gates",)),
    Claim("prompt_consistency", "L_p helps (vs alpha = 0)", (), ("no_prompt_consistency",)),
    Claim("cka", "CKA helps (vs beta = 0)", (), ("no_cka",), worse_has_no_cka=True),
    Claim("cka_intra", "CKA's L_intra helps (full vs inter only)", (), ("inter_only",)),
    Claim("cka_inter", "CKA's L_inter helps (full vs intra only)", (), ("intra_only",)),
    Claim("merge", "The weight merge helps", (), ("no_merge",)),
    *(Claim(f"beats_{b}", f"CKDA beats {b}", (), baseline=b) for b in BASELINES),
    Claim(f"vs_{UPPER_BOUND}", f"CKDA vs {UPPER_BOUND} (upper bound)", (), baseline=UPPER_BOUND, is_claim=False),
)
"""Every claim checked, in table order."""

READINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("published", ()),
    ("s = 10", ("sharp_affinity",)),
    ("s = 100", ("affinity_scale=100",)),
    ("normalised student", ("normalized_student",)),
    ("normalised student, s = 10", ("normalized_student", "sharp_affinity")),
)
"""(label, variant items every CKDA arm carries) of the published setting and each alternative reading."""

VERDICTS: tuple[str, ...] = ("supported", "not resolved", "contradicted", "missing", "upper bound")
"""Possible values of the ``verdict`` column."""


def variant_name(base: str, items: tuple[str, ...]) -> str:
    """The run name of ``base`` with variant ``items`` (sorted, joined by ``+``: ``ckda[no_msp+sharp_affinity]``),
    or ``base`` without items: the canonical spelling of `ckda_avalanche.method_names.format_method_name`."""
    return format_method_name(base, items)


def verdict(low: float, high: float, pairs: int) -> str:
    """``supported`` (interval above 0), ``contradicted`` (below 0) or ``not resolved`` (contains 0, or no
    interval because fewer than two replicates pair up)."""
    if pairs < 2 or math.isnan(low) or math.isnan(high):
        return "not resolved"
    if low > 0:
        return "supported"
    if high < 0:
        return "contradicted"
    return "not resolved"


def _arms(claim: Claim, items: tuple[str, ...]) -> tuple[str, str]:
    better = variant_name("ckda", (*items, *claim.better))
    if claim.baseline:
        return better, claim.baseline
    return better, variant_name("ckda", claim.worse if claim.worse_has_no_cka else (*items, *claim.worse))


def build_claims(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The claims table (one row per protocol, reading and claim; see module docstring) and the notes on readings
    without any run. Columns: ``protocol``, ``reading``, ``claim``, ``text``, ``better``, ``worse``,
    ``better_replicates``, ``worse_replicates``, ``pairs``, ``diff_seen_mAP``, ``diff_low``, ``diff_high``
    (fractions; NaN when missing), ``verdict``, ``missing`` (the runs to make, ``;``-joined)."""
    runs = per_run_table(df)
    rows, notes = [], []
    for protocol in protocol_order(runs["protocol"]):
        present = set(runs.loc[runs["protocol"] == protocol, "method"])
        for label, items in READINGS:
            reading_runs = {_arms(c, items)[0] for c in CLAIMS} | {_arms(c, items)[1] for c in CLAIMS
                                                                   if not (c.baseline or c.worse_has_no_cka)}
            if items and not reading_runs & present:
                notes.append(f"{protocol} protocol, reading {label!r}: no run (e.g. {variant_name('ckda', items)}); "
                             f"run `ckda run --methods '{variant_name('ckda', items)},"
                             f"{_arms(CLAIMS[0], items)[1]},...'` to check the claims under it")
                continue
            for claim in CLAIMS:
                better, worse = _arms(claim, items)
                row: dict[str, object] = {"protocol": protocol, "reading": label, "claim": claim.key,
                                          "text": claim.text, "better": better, "worse": worse}
                absent = [m for m in (better, worse) if m not in present]
                a = seed_values(runs, better, protocol) if better in present else {}
                b = seed_values(runs, worse, protocol) if worse in present else {}
                row.update(better_replicates=len(a), worse_replicates=len(b))
                if absent:
                    row.update(pairs=0, diff_seen_mAP=math.nan, diff_low=math.nan, diff_high=math.nan,
                               verdict="missing", missing=";".join(absent))
                else:
                    diff = paired_difference(a, b)
                    row.update(pairs=diff.n, diff_seen_mAP=diff.mean, diff_low=diff.low, diff_high=diff.high,
                               verdict=verdict(diff.low, diff.high, diff.n) if claim.is_claim else "upper bound",
                               missing="" if diff.n else f"no common seed of {better} and {worse}")
                rows.append(row)
    return pd.DataFrame.from_records(rows), notes


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def claims_markdown(table: pd.DataFrame, notes: list[str]) -> str:
    """One markdown table per protocol and reading of `build_claims` output (differences in points)."""
    out: list[str] = []
    if not table.empty:
        for (protocol, reading), group in table.groupby(["protocol", "reading"], sort=False):
            out += [f"### Claims of the paper: {reading} setting ({protocol} protocol)", "",
                    "| Claim | Better arm | Other arm | Pairs | Δ seen mAP [95% CI] | Verdict |",
                    "|---|---|---|---|---|---|"]
            for _, r in group.iterrows():
                if r["verdict"] == "missing":
                    cell, verdict_text = "–", f"missing: {r['missing'].replace(';', ', ')}"
                elif int(r["pairs"]) == 0:
                    cell, verdict_text = "–", f"not resolved ({r['missing']})"
                else:
                    cell = _points(r["diff_seen_mAP"])
                    if int(r["pairs"]) >= 2:
                        cell += f" [{_points(r['diff_low'])}, {_points(r['diff_high'])}]"
                    verdict_text = str(r["verdict"])
                out.append(f"| {r['text']} | {r['better']} | {r['worse']} | {int(r['pairs'])} | {cell} | "
                           f"{verdict_text} |")
            out.append("")
    out += [f"- {note}" for note in notes]
    if notes:
        out.append("")
    out.append("Δ: better arm minus other arm of the final seen-average mAP (points), paired by seed (and draw), "
               "with its 95% Student-t interval. supported: the interval lies above 0; contradicted: below 0; "
               "not resolved: it contains 0 (or fewer than two pairs). Under a reading both CKDA arms carry it; a "
               "baseline arm is the plain baseline, and so is ckda[no_cka] (a reading changes only CKA). Joint is the upper bound, shown but not judged.")
    return "\n".join(out) + "\n"


def write_claims(sources: Sources, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``claims.csv`` (fractions) and ``claims.md`` into ``out_dir``; returns both paths."""
    table, notes = build_claims(load_tidy(sources))
    return write_table_files(out_dir, "claims", table, claims_markdown(table, notes))
