"""Leaderboard values (mean ± std over seeds, forgetting, BWT, memory, time) on a hand-made tidy CSV."""
import math

import pandas as pd
import pytest

from ckda_avalanche.evaluation.tidy_logger import append_extra_rows, tidy_rows_from_csv
from ckda_avalanche.reporting import build_leaderboard, load_tidy, write_leaderboard
from ckda_avalanche.reporting.run_checks import RunLeftOutWarning

SEEN0 = (0.45 + 0.30 + 0.70) / 3


def test_build_leaderboard_values(tidy_csvs):
    board = build_leaderboard(load_tidy(tidy_csvs))
    assert board["method"].tolist() == ["ckda", "naive"]  # ranked by final seen-average mAP
    assert board["rank"].tolist() == [1, 2]
    ckda = board.iloc[0]
    assert ckda["seeds"] == 2 and ckda["sessions"] == 3
    assert ckda["seen_mAP_mean"] == pytest.approx(SEEN0 + 0.05)
    assert ckda["seen_mAP_std"] == pytest.approx(0.1 / math.sqrt(2))  # sample std of two seeds 0.1 apart
    assert ckda["seen_Rank1_mean"] == pytest.approx(SEEN0 + 0.10)
    assert ckda["regdb/mAP_mean"] == pytest.approx(0.50)
    assert ckda["llcm/Rank1_mean"] == pytest.approx(0.80)
    assert ckda["forgetting_mAP_mean"] == pytest.approx(((0.55 - 0.45) + (0.60 - 0.30)) / 2)
    assert ckda["forgetting_mAP_std"] == pytest.approx(0.0, abs=1e-12)
    assert ckda["bwt_mAP_mean"] == pytest.approx(((0.45 - 0.50) + (0.30 - 0.60)) / 2)
    assert ckda["memory_bytes_mean"] == pytest.approx(3 * 2**20)  # teacher + prototypes, largest session
    assert ckda["train_time_s_mean"] == pytest.approx(180.0)
    naive = board.iloc[1]
    assert naive["seeds"] == 1 and math.isnan(naive["seen_mAP_std"])
    assert naive["seen_mAP_mean"] == pytest.approx(SEEN0 / 2)
    assert naive["forgetting_mAP_mean"] == pytest.approx(0.2 / 2)


def test_write_leaderboard_from_run_dirs(tidy_csvs, tmp_path):
    run_dirs = [p.parent for p in tidy_csvs]
    csv_path, md_path = write_leaderboard(run_dirs, tmp_path / "report")
    table = pd.read_csv(csv_path)
    assert table["method"].tolist() == ["ckda", "naive"]
    assert table.loc[0, "seen_mAP_mean"] == pytest.approx(SEEN0 + 0.05)  # fractions in the CSV
    md = md_path.read_text()
    lines = md.splitlines()
    assert lines[0].startswith("| # | Method | Precision | Protocol | Seeds | Sessions | Seen mAP [95% CI] | "
                               "Δ vs leader | Seen R1 | regdb mAP / R1")
    ckda_line = next(line for line in lines if "| ckda |" in line)
    # percent, one decimal; 95% interval of two seeds 0.1 apart: mean ± t_{0.975,1} * 0.1 / sqrt(2) / sqrt(2)
    half = 12.706205 * 0.05
    assert (f"| {100 * (SEEN0 + 0.05):.1f} ± 7.1 [{100 * (SEEN0 + 0.05 - half):.1f}, "
            f"{100 * (SEEN0 + 0.05 + half):.1f}] | leader |") in ckda_line
    assert "| 20.0 ± 0.0 | -17.5 ± 0.0 |" in ckda_line  # forgetting and BWT in points
    assert "| 3.0 ± 0.0 | 3.0 ± 0.0 min |" in ckda_line  # memory MiB, train time
    naive_line = next(line for line in lines if "| naive |" in line)
    assert f"| {100 * SEEN0 / 2:.1f} |" in naive_line and "±" not in naive_line.split("|")[7]
    # one naive seed pairs with one of ckda's two: a difference without an interval
    assert f"| {100 * (SEEN0 / 2 - SEEN0):+.1f} |" in naive_line


def test_incomplete_seed_and_duplicates_are_left_out(tidy_csvs, tmp_path):
    frame = load_tidy(tidy_csvs)
    short = frame[~((frame["run"] == "ckda_s1") & (frame["train_exp"] == 3))]
    with pytest.warns(RunLeftOutWarning, match=r"'ckda_s1'.*unfinished: 2 of 3 sessions"):
        board = build_leaderboard(short)
    assert board.set_index("method").loc["ckda", "seeds"] == 1  # the complete seed only
    row = tidy_rows_from_csv(tidy_csvs[0]).iloc[[0]].to_dict("records")
    append_extra_rows(tidy_csvs[0], row)
    with pytest.warns(RunLeftOutWarning, match=r"'ckda_s0'.*recorded twice"):
        assert "ckda_s0" not in set(load_tidy(tidy_csvs)["run"])
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "avalanche_csv_logger.csv").write_text("epoch,acc\n1,0.5\n")  # not a tidy CSV
    with pytest.raises(FileNotFoundError, match="no metrics.csv and no tidy CSV"):
        load_tidy(empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_tidy(tmp_path / "nonexistent_dir")


def test_missing_evaluation_is_reported(tidy_csvs):
    frame = load_tidy(tidy_csvs)
    holey = frame[~((frame["run"] == "naive_s0") & (frame["train_exp"] == 3) & (frame["eval_dataset"] == "sysu"))]
    with pytest.warns(RunLeftOutWarning, match=r"naive_s0.*R\[3, 1\] missing"):
        board = build_leaderboard(holey)
    assert board["method"].tolist() == ["ckda"]


def test_peak_memory_columns_apart_from_kept_bytes(tidy_csvs, tmp_path):
    """Peak RSS / GPU rows become their own columns (largest over sessions), never added to the kept bytes."""
    base = dict(run="ckda_s0", method="ckda", seed=0, protocol="paper", eval_dataset="-", trial="-")
    append_extra_rows(tidy_csvs[0], [
        dict(base, train_exp=1, metric="peak_rss_bytes", value=300 * 2**20),
        dict(base, train_exp=2, metric="peak_rss_bytes", value=500 * 2**20),
        dict(base, train_exp=3, metric="peak_rss_bytes", value=400 * 2**20),
        dict(base, train_exp=2, metric="peak_gpu_reserved_bytes", value=7 * 2**30)])
    board = build_leaderboard(load_tidy(tidy_csvs[:1]))
    row = board.iloc[0]
    assert row["memory_bytes_mean"] == pytest.approx(3 * 2**20)  # unchanged: kept bytes only
    assert row["peak_rss_bytes_mean"] == pytest.approx(500 * 2**20)
    assert row["peak_gpu_reserved_bytes_mean"] == pytest.approx(7 * 2**30)
    _, md_path = write_leaderboard(tidy_csvs[:1], tmp_path / "peak")
    header, _, line = md_path.read_text().splitlines()[:3]
    cells = dict(zip([h.strip() for h in header.strip("|").split("|")],
                     [c.strip() for c in line.strip("|").split("|")]))
    assert cells["Memory (MiB)"] == "3.0" and cells["Peak RSS (MiB)"] == "500" and cells["Peak GPU (MiB)"] == "7168"
    # a run without measured peaks (older CSVs, or CPU for the GPU column) shows a dash
    board = build_leaderboard(load_tidy(tidy_csvs[2:]))
    assert math.isnan(board.iloc[0]["peak_rss_bytes_mean"])
