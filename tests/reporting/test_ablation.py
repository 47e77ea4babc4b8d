"""Ablation table of method variants (paired differences to the full method) on a hand-made tidy CSV."""
import math

import pandas as pd
import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.evaluation.tidy_logger import append_extra_rows
from ckda_avalanche.reporting import MixedPrecisionError, build_ablation, plot_runs, split_variant, write_ablation
from ckda_avalanche.reporting.ablation import ablation_markdown

T1, T2 = 12.706205, 4.302653  # t_{0.975, 1} and t_{0.975, 2} from a t table

# (regdb after session 1, regdb after session 2, sysu after session 2) per (method, seed)
SCORES = {
    ("ckda", 0): (0.60, 0.50, 0.70), ("ckda", 1): (0.62, 0.52, 0.74), ("ckda", 2): (0.58, 0.49, 0.69),
    ("ckda[no_msp]", 0): (0.60, 0.45, 0.66), ("ckda[no_msp]", 1): (0.61, 0.50, 0.70),
    ("ckda[no_msp]", 2): (0.59, 0.44, 0.64),
    ("ckda[no_cka+no_merge]", 0): (0.60, 0.40, 0.70), ("ckda[no_cka+no_merge]", 1): (0.60, 0.41, 0.72),
    ("finetune", 0): (0.70, 0.20, 0.75), ("finetune", 1): (0.70, 0.22, 0.74),
    ("ewc[lambda=100]", 0): (0.65, 0.30, 0.70),
}


def _interval(diffs, t):
    mean = sum(diffs) / len(diffs)
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    half = t * std / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def test_split_variant():
    assert split_variant("ckda") == ("ckda", None)
    assert split_variant("ckda[no_cka+no_merge]") == ("ckda", "no_cka+no_merge")
    assert split_variant("ewc[lambda=100]") == ("ewc", "lambda=100")
    for bad in ("ckda[", "[x]", "ckda[a]b", "ckda[a[b]]", "ckda]"):
        with pytest.raises(ValueError, match=r"NAME or NAME\[ITEM\+ITEM\.\.\.\]"):
            split_variant(bad)
    with pytest.raises(ValueError, match="empty item"):
        split_variant("ckda[]")


def test_ablation_rows_and_paired_differences(make_frame):
    table = build_ablation(make_frame(SCORES))
    assert table[["base", "variant", "method"]].values.tolist() == [
        ["ckda", "full", "ckda"], ["ckda", "no_cka+no_merge", "ckda[no_cka+no_merge]"],
        ["ckda", "no_msp", "ckda[no_msp]"], ["ewc", "lambda=100", "ewc[lambda=100]"]]  # no finetune row
    rows = table.set_index("method")
    # full method: seen = (regdb + sysu) / 2 after session 2 = 0.60, 0.63, 0.59; forgetting = 0.10, 0.10, 0.09
    assert rows.loc["ckda", "seen_mAP_mean"] == pytest.approx((0.60 + 0.63 + 0.59) / 3)
    assert rows.loc["ckda", "regdb/mAP_mean"] == pytest.approx((0.50 + 0.52 + 0.49) / 3)
    assert rows.loc["ckda", "sysu/mAP_mean"] == pytest.approx((0.70 + 0.74 + 0.69) / 3)
    assert rows.loc["ckda", "forgetting_mAP_mean"] == pytest.approx((0.10 + 0.10 + 0.09) / 3)
    assert rows.loc["ckda", "seen_Rank1_mean"] == pytest.approx((0.60 + 0.63 + 0.59) / 3 / 2 + 0.5)
    assert math.isnan(rows.loc["ckda", "diff_seen_mAP"]) and math.isnan(rows.loc["ckda", "diff_pairs"])
    # no_msp - full per seed: 0.555 - 0.60, 0.60 - 0.63, 0.54 - 0.59
    mean, low, high = _interval([-0.045, -0.03, -0.05], T2)
    assert rows.loc["ckda[no_msp]", ["diff_seen_mAP", "diff_seen_mAP_low", "diff_seen_mAP_high"]].tolist() == \
        pytest.approx([mean, low, high], rel=1e-6)
    # Rank1 = mAP / 2 + 0.5 in this CSV, so its differences are halved
    assert rows.loc["ckda[no_msp]", ["diff_seen_Rank1", "diff_seen_Rank1_low", "diff_seen_Rank1_high"]
                    ].tolist() == pytest.approx([mean / 2, low / 2, high / 2], rel=1e-6)
    assert rows.loc["ckda[no_msp]", "diff_pairs"] == 3
    # two seeds only: 0.55 - 0.60, 0.565 - 0.63, with t_{0.975, 1}
    mean, low, high = _interval([-0.05, -0.065], T1)
    assert rows.loc["ckda[no_cka+no_merge]", ["diff_seen_mAP", "diff_seen_mAP_low", "diff_seen_mAP_high"]
                    ].tolist() == pytest.approx([mean, low, high], rel=1e-6)
    assert rows.loc["ckda[no_cka+no_merge]", "diff_pairs"] == 2
    # a variant whose full method was not run: listed, without differences
    assert math.isnan(rows.loc["ewc[lambda=100]", "diff_seen_mAP"])

    md = ablation_markdown(table)
    assert "### ckda ablation (paper protocol)" in md and "### ewc ablation (paper protocol)" in md
    assert ("| Variant | Precision | Seeds | Seen mAP | Seen R1 | regdb mAP | sysu mAP | Forgetting mAP | "
            "Δ seen mAP vs ckda [95% CI] | Δ seen R1 vs ckda [95% CI] |") in md
    assert "| ckda (full) | unknown | 3 | 60.7 ± 2.1 |" in md and "| — | — |" in md
    # no_msp: seen 0.555, 0.60, 0.54 -> 56.5 ± 3.1; Δ -4.2 [-6.8, -1.6] (hand: -0.04167 ± 0.02586)
    assert "| ckda[no_msp] | unknown | 3 | 56.5 ± 3.1 |" in md and "| -4.2 [-6.8, -1.6] | -2.1 [-3.4, -0.8] |" in md
    assert "The full method 'ewc' is not among these runs" in md


def test_no_variants_means_no_table(make_frame, tmp_path):
    frame = make_frame({k: v for k, v in SCORES.items() if "[" not in k[0]})
    assert build_ablation(frame).empty
    assert write_ablation(frame, tmp_path) is None and not (tmp_path / "ablation.md").exists()


def test_precision_of_full_and_variants_must_match(make_frame):
    scores = {k: v for k, v in SCORES.items() if k[0] in ("ckda", "ckda[no_msp]")}
    precision = {k: ("bf16" if k[0] == "ckda" else "fp32") for k in scores}
    with pytest.raises(MixedPrecisionError, match=r"ablation of 'ckda'.*ckda\[no_msp\]: fp32.*--merge-precisions"):
        build_ablation(make_frame(scores, precision=precision))
    table = build_ablation(make_frame(scores, precision=precision), merge_precisions=True)
    assert table["precision"].tolist() == ["bf16", "fp32"]


def test_plot_draws_ablation_bars(make_frame, tmp_path):
    paths = {p.name for p in plot_runs(make_frame(SCORES), tmp_path)}
    assert "ablation_ckda_paper.png" in paths and "final_seen_paper.png" in paths
    assert not any(name.startswith("ablation_ewc") for name in paths)  # no full ewc: nothing to difference
    assert (tmp_path / "ablation_ckda_paper.png").stat().st_size > 10_000


def _write_runs(root, frame):
    for run, rows in frame.groupby("run"):
        append_extra_rows(root / run / "metrics.csv", rows.to_dict("records"))


def test_leaderboard_command_writes_ablation_and_refuses_mixed_precision(make_frame, tmp_path, capsys):
    runs = tmp_path / "runs"
    _write_runs(runs, make_frame(SCORES))
    assert main(["leaderboard", str(runs), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "### ckda ablation (paper protocol)" in printed
    table = pd.read_csv(tmp_path / "out" / "ablation.csv")
    assert table["method"].tolist()[:3] == ["ckda", "ckda[no_cka+no_merge]", "ckda[no_msp]"]
    assert (tmp_path / "out" / "leaderboard.md").is_file()

    mixed = tmp_path / "mixed"
    scores = {k: v for k, v in SCORES.items() if k[0] == "finetune"}
    _write_runs(mixed, make_frame(scores, precision={("finetune", 0): "bf16", ("finetune", 1): "fp32"}))
    assert main(["leaderboard", str(mixed)]) == 2
    assert "runs of different precision" in capsys.readouterr().err
    assert main(["leaderboard", str(mixed), "--merge-precisions"]) == 0
    assert "| finetune | bf16+fp32 |" in capsys.readouterr().out
    assert main(["plot", str(mixed)]) == 2
    assert main(["plot", str(mixed), "--merge-precisions"]) == 0
