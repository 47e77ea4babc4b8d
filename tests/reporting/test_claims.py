"""`ckda claims`: each claim's paired difference, interval and verdict, computed by hand on a made-up board."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.evaluation.tidy_logger import append_extra_rows
from ckda_avalanche.reporting.claims import CLAIMS, build_claims, variant_name, verdict

T_975_DF2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom (tables)


def _seen(value):
    """(regdb after 1, regdb after 2, sysu after 2) with final seen mAP = ``value``."""
    return (0.9, value - 0.05, value + 0.05)


SEEN = {  # method -> final seen mAP of seeds 0, 1, 2
    "ckda": (0.60, 0.60, 0.65),
    "ckda[no_msp]": (0.50, 0.55, 0.58),           # ckda better by .10, .05, .07: supported
    "ckda[no_mcp]": (0.62, 0.55, 0.64),           # -.02, +.05, +.01: not resolved
    "finetune": (0.70, 0.72, 0.74),               # -.10, -.12, -.09: contradicted
    "joint": (0.80, 0.80, 0.80),
    "ckda[sharp_affinity]": (0.40, 0.45, 0.50),
    "ckda[no_msp+sharp_affinity]": (0.30, 0.35, 0.40),  # +.10 each: zero spread
}


def _frame(final_scores_frame):
    return final_scores_frame({(m, s): _seen(v[s]) for m, v in SEEN.items() for s in range(3)})


def _interval(diffs):
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = T_975_DF2 * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _row(table, reading, claim):
    chosen = table[(table["reading"] == reading) & (table["claim"] == claim)]
    assert len(chosen) == 1
    return chosen.iloc[0]


def test_verdicts_and_intervals_by_hand(make_frame):
    table, notes = build_claims(_frame(make_frame))
    msp = _row(table, "published", "msp")
    mean, low, high = _interval([0.10, 0.05, 0.07])
    assert (msp["better"], msp["worse"], msp["pairs"]) == ("ckda", "ckda[no_msp]", 3)
    assert msp["diff_seen_mAP"] == pytest.approx(mean) and mean == pytest.approx(0.073333, abs=1e-6)
    assert (msp["diff_low"], msp["diff_high"]) == (pytest.approx(low), pytest.approx(high))
    assert low == pytest.approx(0.010816, abs=1e-5) and msp["verdict"] == "supported"
    mcp = _row(table, "published", "mcp")
    mean, low, high = _interval([-0.02, 0.05, 0.01])
    assert mcp["diff_seen_mAP"] == pytest.approx(mean) and low < 0 < high and mcp["verdict"] == "not resolved"
    finetune = _row(table, "published", "beats_finetune")
    mean, low, high = _interval([-0.10, -0.12, -0.09])
    assert finetune["diff_high"] == pytest.approx(high) and high < 0 and finetune["verdict"] == "contradicted"
    joint = _row(table, "published", "vs_joint")
    assert joint["verdict"] == "upper bound" and joint["diff_seen_mAP"] == pytest.approx(-0.1833333, abs=1e-6)


def test_missing_runs_are_named_not_fatal(make_frame):
    table, notes = build_claims(_frame(make_frame))
    cka = _row(table, "published", "cka")
    assert cka["verdict"] == "missing" and cka["missing"] == "ckda[no_cka]" and math.isnan(cka["diff_seen_mAP"])
    assert _row(table, "published", "beats_lwf")["missing"] == "lwf"
    # a reading with runs: both CKDA arms carry it, baselines stay plain
    sharp = _row(table, "s = 10", "msp")
    assert (sharp["better"], sharp["worse"]) == ("ckda[sharp_affinity]", "ckda[no_msp+sharp_affinity]")
    assert sharp["diff_seen_mAP"] == pytest.approx(0.10) and sharp["verdict"] == "supported"
    assert _row(table, "s = 10", "beats_finetune")["worse"] == "finetune"
    assert _row(table, "s = 10", "mcp")["missing"] == "ckda[no_mcp+sharp_affinity]"
    # CKA switched off: the reading has nothing to act on, so the published-setting run stands for that arm
    assert _row(table, "s = 10", "cka")["worse"] == "ckda[no_cka]"
    # readings without any run: one note each, no rows (the plain ckda[no_cka], which stands in every reading, does
    # not make a reading "run")
    frame = _frame(make_frame)
    extra = frame[frame["method"] == "ckda[no_mcp]"].assign(method="ckda[no_cka]")
    table, notes = build_claims(pd.concat([frame, extra], ignore_index=True))
    assert set(table["reading"]) == {"published", "s = 10"}
    assert any("s = 100" in n and "ckda[affinity_scale=100]" in n for n in notes)
    assert any("normalised student" in n for n in notes)
    assert len(table) == 2 * len(CLAIMS)


def test_verdict_rule_and_names():
    assert verdict(0.01, 0.2, 3) == "supported"
    assert verdict(-0.2, -0.01, 3) == "contradicted"
    assert verdict(-0.1, 0.1, 3) == "not resolved"
    assert verdict(float("nan"), float("nan"), 1) == "not resolved"
    assert variant_name("ckda", ("sharp_affinity", "no_msp")) == "ckda[no_msp+sharp_affinity]"
    assert variant_name("ckda", ()) == "ckda"


def test_pairs_by_draw_and_seed(make_frame):
    frame = _frame(make_frame)
    other = _frame(make_frame)  # a second draw: ckda[no_msp] lower by a further 0.1 in every seed
    other.loc[other["method"] == "ckda[no_msp]", "value"] -= 0.1
    pooled = pd.concat([frame.assign(draw=0), other.assign(draw=7)], ignore_index=True)
    table, _ = build_claims(pooled)
    msp = _row(table, "published", "msp")
    diffs = [0.10, 0.05, 0.07, 0.20, 0.15, 0.17]
    assert msp["pairs"] == 6 and msp["diff_seen_mAP"] == pytest.approx(sum(diffs) / 6)


def test_cli_writes_csv_and_markdown(make_frame, tmp_path, capsys):
    rows = _frame(make_frame).to_dict("records")
    for method in ("ckda", "ckda[no_msp]"):
        append_extra_rows(tmp_path / "runs" / f"{method}.csv", [r for r in rows if r["method"] == method])
    assert main(["claims", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    markdown = (tmp_path / "out" / "claims.md").read_text()
    assert "| MSP helps | ckda | ckda[no_msp] | 3 | +7.3 [+1.1, +13.6] | supported |" in markdown
    assert "missing: finetune" in markdown
    assert (tmp_path / "out" / "claims.csv").read_text().startswith("protocol,reading,claim,")


def test_the_combined_reading_puts_both_items_on_every_ckda_arm(make_frame):
    # normalised student at s = 10: ckda[normalized_student+sharp_affinity] against
    # ckda[inter_only+normalized_student+sharp_affinity]; CKA switched off stays the plain ckda[no_cka]
    combined = "ckda[normalized_student+sharp_affinity]"
    scores = {(m, s): _seen(v[s]) for m, v in SEEN.items() for s in range(3)}
    scores.update({(combined, s): _seen(0.5 + 0.01 * s) for s in range(3)})
    scores.update({("ckda[no_cka]", s): _seen(0.45 + 0.02 * s) for s in range(3)})
    table, _ = build_claims(make_frame(scores))
    cka = _row(table, "normalised student, s = 10", "cka")
    assert (cka["better"], cka["worse"]) == (combined, "ckda[no_cka]")
    mean, low, high = _interval([0.05, 0.04, 0.03])
    assert cka["diff_seen_mAP"] == pytest.approx(mean) and cka["diff_low"] == pytest.approx(low)
    assert _row(table, "normalised student, s = 10", "cka_intra")["missing"] == (
        "ckda[inter_only+normalized_student+sharp_affinity]")
