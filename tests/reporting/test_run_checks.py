"""Reports never crash on an incomplete or duplicated run: each such run is named with what is wrong (one warning
line) and left out; the other runs are reported as if it were not there."""
import shutil

import pandas as pd
import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.evaluation.tidy_logger import append_extra_rows, tidy_rows_from_csv
from ckda_avalanche.reporting import build_leaderboard, load_tidy
from ckda_avalanche.reporting.run_checks import NoRunToReportError, RunLeftOutWarning, screen_runs


def _board_without(tidy_csvs, run):
    """The leaderboard built from the CSVs of the other runs only (the expected result)."""
    return build_leaderboard(load_tidy([p for p in tidy_csvs if p.parent.name != run]))


def _warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, RunLeftOutWarning)]


def test_unfinished_run_is_left_out(tidy_csvs):
    frame = load_tidy(tidy_csvs)
    unfinished = frame[~((frame["run"] == "naive_s0") & (frame["train_exp"] == 3))]
    with pytest.warns(RunLeftOutWarning) as record:
        board = build_leaderboard(unfinished)
    assert _warnings(record) == ["run 'naive_s0' (method naive, seed 0, protocol paper) left out: unfinished: 2 of "
                                 "3 sessions (regdb, sysu, llcm) have scores; resume it with --resume"]
    pd.testing.assert_frame_equal(board, _board_without(tidy_csvs, "naive_s0"))


def test_missing_score_of_a_learned_dataset_is_left_out(tidy_csvs):
    frame = load_tidy(tidy_csvs)
    holey = frame[~((frame["run"] == "ckda_s1") & (frame["train_exp"] == 2) & (frame["eval_dataset"] == "regdb")
                    & (frame["metric"] == "Rank1"))]
    with pytest.warns(RunLeftOutWarning, match=r"'ckda_s1'.*no Rank1 of regdb after session 2 \(R\[2, 0\] missing\)"):
        board = build_leaderboard(holey)
    pd.testing.assert_frame_equal(board, _board_without(tidy_csvs, "ckda_s1"))
    # a not-yet-learned dataset need not be evaluated (a library user may evaluate only what was learned)
    partial = frame[~((frame["train_exp"] == 1) & (frame["eval_dataset"] == "llcm"))]
    assert set(screen_runs(partial)["run"]) == {"ckda_s0", "ckda_s1", "naive_s0"}


def test_run_appended_twice_is_left_out(tidy_csvs):
    # the library example run twice into one CSV (before TidyCSVLogger refused it): every value measured twice
    rows = tidy_rows_from_csv(tidy_csvs[2]).to_dict("records")
    append_extra_rows(tidy_csvs[2], rows)
    with pytest.warns(RunLeftOutWarning, match=r"'naive_s0'.*measurement\(s\) recorded twice"):
        board = build_leaderboard(load_tidy(tidy_csvs))
    pd.testing.assert_frame_equal(board, _board_without(tidy_csvs, "naive_s0"))


def test_run_copied_into_two_files_is_left_out(tidy_csvs, tmp_path):
    copy = tidy_csvs[0].parent / "metrics_backup.csv"
    shutil.copy(tidy_csvs[0], copy)
    with pytest.warns(RunLeftOutWarning, match=r"'ckda_s0'.*rows are in 2 files .*metrics_backup.csv"):
        frame = load_tidy([p.parent for p in tidy_csvs])
    assert "ckda_s0" not in set(frame["run"])


def test_same_seed_in_two_runs_is_left_out(tidy_csvs, tmp_path):
    rerun = tmp_path / "rerun" / "tidy.csv"
    rows = tidy_rows_from_csv(tidy_csvs[2]).assign(run="naive_rerun").to_dict("records")
    append_extra_rows(rerun, rows)
    with pytest.warns(RunLeftOutWarning) as record:
        board = build_leaderboard(load_tidy([*tidy_csvs, rerun]))
    assert len(_warnings(record)) == 2 and all("appears in several runs ('naive_rerun', 'naive_s0')" in w
                                               for w in _warnings(record))
    pd.testing.assert_frame_equal(board, _board_without(tidy_csvs, "naive_s0"))


def test_nothing_left_is_one_clear_error(tidy_csvs):
    frame = load_tidy(tidy_csvs)
    with pytest.warns(RunLeftOutWarning), pytest.raises(NoRunToReportError, match="all 3 run"):
        load_tidy(frame[frame["train_exp"] < 3])
    # plots keep unfinished runs (their curves are drawn as far as they go)
    assert len(load_tidy(frame[frame["train_exp"] < 3], complete_only=False)) > 0


def test_leaderboard_command_warns_in_one_line_and_goes_on(tidy_csvs, tmp_path, capsys):
    frame = tidy_rows_from_csv(tidy_csvs[1])
    tidy_csvs[1].unlink()
    append_extra_rows(tidy_csvs[1], frame[frame["train_exp"] < 3].to_dict("records"))  # ckda_s1 unfinished
    assert main(["leaderboard", *(str(p.parent) for p in tidy_csvs), "--out", str(tmp_path / "board")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ("ckda: warning: run 'ckda_s1' (method ckda, seed 1, protocol paper) left out: "
                            "unfinished: 2 of 3 sessions (regdb, sysu, llcm) have scores; resume it with --resume\n")
    board = pd.read_csv(tmp_path / "board" / "leaderboard.csv")
    assert board.set_index("method").loc["ckda", "seeds"] == 1
    for path in tidy_csvs:
        path.write_text(path.read_text().replace(",3,", ",9,"))  # every run now has a gap: all are left out
    assert main(["leaderboard", *(str(p.parent) for p in tidy_csvs), "--out", str(tmp_path / "board2")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and err[-1].startswith("ckda: error: no run left to report")
