"""Leaderboard significance (95% intervals, paired differences, shared ranks) and precision, on hand-made CSVs."""
import math

import pandas as pd
import pytest

from ckda_avalanche.reporting import MixedPrecisionError, build_leaderboard, leaderboard_markdown, run_scores
from ckda_avalanche.reporting.tidy_data import load_tidy

T2 = 4.302653  # t_{0.975, 2} from a t table (3 seeds)
# final seen-average mAP per seed 0, 1, 2
SEEN = {"ckda": (0.42, 0.45, 0.40), "lwf": (0.41, 0.39, 0.44), "noisy": (0.05, 0.65, 0.30),
        "ewc": (0.33, 0.36, 0.30), "finetune": (0.30, 0.32, 0.31)}


def _scores(seen=SEEN):
    # regdb 0.9 after session 1, then regdb = sysu = v after session 2: seen mAP = v
    return {(m, s): (0.9, v, v) for m, values in seen.items() for s, v in enumerate(values)}


def _paired(a, b):
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    half = T2 * std / math.sqrt(len(d))
    return mean, mean - half, mean + half


def test_intervals_paired_differences_and_shared_ranks(make_frame):
    board = build_leaderboard(make_frame(_scores()))
    assert board["method"].tolist() == ["ckda", "lwf", "noisy", "ewc", "finetune"]
    # lwf (-1.0 [-13.4, +11.4]) and the noisy method (interval wide enough to hold 0) tie with the leader;
    # ewc is steadily 9 points below (its paired interval excludes 0) and keeps its position
    assert board["rank"].tolist() == [1, 1, 1, 4, 5]
    assert board["tied_with_leader"].tolist() == [True, True, True, False, False]
    rows = board.set_index("method")
    # 95% interval of ckda's mean: 0.42333 ± t * std / sqrt(3), std of (0.42, 0.45, 0.40)
    m = sum(SEEN["ckda"]) / 3
    std = math.sqrt(sum((x - m) ** 2 for x in SEEN["ckda"]) / 2)
    assert rows.loc["ckda", "seen_mAP_ci95"] == pytest.approx(T2 * std / math.sqrt(3), rel=1e-6)
    assert rows.loc["ckda", "seen_mAP_std"] == pytest.approx(std)
    # differences to the leader: by hand, lwf - ckda = -0.01, -0.06, +0.04 -> mean -0.01, std 0.05
    assert rows.loc["lwf", "vs_leader_seen_mAP"] == pytest.approx(-0.01)
    half = T2 * 0.05 / math.sqrt(3)
    assert rows.loc["lwf", "vs_leader_seen_mAP_low"] == pytest.approx(-0.01 - half, rel=1e-6)
    assert rows.loc["lwf", "vs_leader_seen_mAP_high"] == pytest.approx(-0.01 + half, rel=1e-6)
    for method in ("noisy", "ewc", "finetune"):
        mean, low, high = _paired(SEEN[method], SEEN["ckda"])
        assert rows.loc[method, ["vs_leader_seen_mAP", "vs_leader_seen_mAP_low", "vs_leader_seen_mAP_high"]
                        ].tolist() == pytest.approx([mean, low, high], rel=1e-6)
        assert rows.loc[method, "vs_leader_pairs"] == 3
    assert rows.loc["ewc", "vs_leader_seen_mAP_high"] < 0 < rows.loc["noisy", "vs_leader_seen_mAP_high"]
    # differences to fine-tuning: ckda - finetune = 0.12, 0.13, 0.09
    mean, low, high = _paired(SEEN["ckda"], SEEN["finetune"])
    assert mean == pytest.approx(0.34 / 3)
    assert rows.loc["ckda", ["vs_reference_seen_mAP", "vs_reference_seen_mAP_low", "vs_reference_seen_mAP_high"]
                    ].tolist() == pytest.approx([mean, low, high], rel=1e-6)
    assert (rows["reference"] == "finetune").all() and (rows["leader"] == "ckda").all()
    # against itself: nothing
    assert math.isnan(rows.loc["ckda", "vs_leader_seen_mAP"]) and math.isnan(rows.loc["finetune",
                                                                                       "vs_reference_seen_mAP"])

    md = leaderboard_markdown(board)
    header = md.splitlines()[0]
    assert header.startswith("| # | Method | Precision | Protocol | Seeds | Sessions | Seen mAP [95% CI] | "
                             "Δ vs leader | Δ vs finetune | Seen R1 |")
    lwf_line = next(line for line in md.splitlines() if "| lwf |" in line)
    assert lwf_line.startswith("| 1 | lwf | unknown | paper | 3 | 2 | 41.3 ± 2.5 [35.1, 47.6] | "
                               "-1.0 [-13.4, +11.4] | +10.3 [+2.7, +17.9] |")
    assert "| ckda | unknown | paper | 3 | 2 | 42.3 ± 2.5 [36.1, 48.6] | leader |" in md
    assert "| 5 | finetune |" in md and "-11.3 [-16.5, -6.2] | — |" in md


def test_unpaired_seeds_and_single_seed(make_frame):
    seen = {"ckda": (0.5, 0.6, 0.55), "finetune": (0.3,)}  # finetune ran seed 0 only
    board = build_leaderboard(make_frame(_scores(seen))).set_index("method")
    # one pair: a difference without an interval, and no tie can be claimed
    assert board.loc["finetune", "vs_leader_pairs"] == 1
    assert board.loc["finetune", "vs_leader_seen_mAP"] == pytest.approx(0.3 - 0.5)
    assert math.isnan(board.loc["finetune", "vs_leader_seen_mAP_low"])
    assert board.loc["finetune", "rank"] == 2 and not board.loc["finetune", "tied_with_leader"]
    md = leaderboard_markdown(build_leaderboard(make_frame(_scores(seen))))
    assert "| -20.0 | — |" in md  # finetune row: one seed, one pair
    assert "| +20.0 (n=1) |" in md  # ckda row: only 1 of its 3 seeds pairs with finetune


def test_reference_absent_has_no_column(make_frame):
    board = build_leaderboard(make_frame(_scores({"ckda": (0.5, 0.6), "lwf": (0.4, 0.45)})))
    assert board["vs_reference_seen_mAP"].isna().all()
    assert "Δ vs finetune" not in leaderboard_markdown(board)
    board = build_leaderboard(make_frame(_scores({"ckda": (0.5, 0.6), "lwf": (0.4, 0.45)})), reference="lwf")
    assert "Δ vs lwf" in leaderboard_markdown(board)
    assert board.set_index("method").loc["ckda", "vs_reference_seen_mAP"] == pytest.approx(0.125)


def test_protocols_are_ranked_separately(make_frame):
    paper = make_frame(_scores({"ckda": (0.5, 0.6, 0.55), "lwf": (0.2, 0.3, 0.25)}))
    full = make_frame(_scores({"ckda": (0.1, 0.2, 0.15), "lwf": (0.4, 0.45, 0.42)}), protocol="full")
    board = build_leaderboard(pd.concat([full, paper], ignore_index=True))
    assert board[["protocol", "method", "rank"]].values.tolist() == [
        ["paper", "ckda", 1], ["paper", "lwf", 2], ["full", "lwf", 1], ["full", "ckda", 2]]


def test_precision_recorded_shown_and_not_merged(make_frame):
    scores = _scores({"ckda": (0.5, 0.6, 0.55), "finetune": (0.3, 0.35, 0.32)})
    precision = {key: "bf16" for key in scores}
    board = build_leaderboard(make_frame(scores, precision=precision))
    assert set(board["precision"]) == {"bf16"}
    assert "| ckda | bf16 | paper |" in leaderboard_markdown(board)

    precision[("ckda", 1)] = "fp32"
    frame = make_frame(scores, precision=precision)
    with pytest.raises(MixedPrecisionError, match=r"method 'ckda' \(paper\).*seed 0 \(ckda_s0\): bf16.*"
                                                  r"seed 1 \(ckda_s1\): fp32.*--merge-precisions"):
        build_leaderboard(frame)
    merged = build_leaderboard(frame, merge_precisions=True).set_index("method")
    assert merged.loc["ckda", "precision"] == "bf16+fp32" and merged.loc["ckda", "seeds"] == 3
    md = leaderboard_markdown(merged.reset_index())
    assert "| ckda | bf16+fp32 |" in md and "Rows differ in precision (bf16, bf16+fp32)" in md

    # a run resumed on another machine: its sessions differ, and it is its own precision
    precision[("ckda", 1)] = ["bf16", "fp32"]
    runs = {r.run: r.precision for r in run_scores(load_tidy(make_frame(scores, precision=precision)))}
    assert runs["ckda_s1"] == "bf16+fp32" and runs["ckda_s0"] == "bf16"


def test_precision_unknown_and_shared_across_protocols(make_frame):
    scores = _scores({"ckda": (0.5, 0.6)})
    trained = make_frame(scores, precision={key: "fp32" for key in scores})
    rescored = make_frame(scores, protocol="full")  # re-scored later under another protocol: no precision rows
    runs = run_scores(load_tidy(pd.concat([trained, rescored], ignore_index=True)))
    assert {(r.protocol, r.precision) for r in runs} == {("paper", "fp32"), ("full", "fp32")}
    assert {r.precision for r in run_scores(load_tidy(rescored))} == {"unknown"}
    # an old run without the record is not pooled with a recorded one
    mixed = pd.concat([make_frame({("ckda", 0): (0.9, 0.5, 0.5)}, precision={("ckda", 0): "bf16"}),
                       make_frame({("ckda", 1): (0.9, 0.6, 0.6)})], ignore_index=True)
    with pytest.raises(MixedPrecisionError, match="unknown"):
        build_leaderboard(mixed)
