"""Pooling synthetic draws: draw x seed replicates, the draw of every row, and the method order's agreement."""
from __future__ import annotations

import json
import math
import warnings

import pandas as pd
import pytest

from ckda_avalanche.evaluation.tidy_logger import TIDY_COLUMNS, append_extra_rows
from ckda_avalanche.reporting.draws import draw_agreement, kendall_tau_b
from ckda_avalanche.reporting.leaderboard import (build_leaderboard, leaderboard_markdown, per_run_table,
                                                  write_leaderboard)
from ckda_avalanche.reporting.tidy_data import load_tidy


def test_kendall_tau_b_by_hand():
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # one tie in x, one in y: C = 4, D = 0, n0 = 6 -> 4 / sqrt(5 * 5)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="different lengths"):
        kendall_tau_b([1, 2], [1])


def _seen(value):
    return (0.9, value - 0.05, value + 0.05)


def _two_draws(make_frame, second):
    """Draw 0: a > b > c over seeds 0, 1; draw 7 given by ``second`` (method -> seen mAP of seeds 0, 1)."""
    first = {"a": (0.70, 0.72), "b": (0.50, 0.52), "c": (0.30, 0.31)}
    frames = []
    for draw, table in ((0, first), (7, second)):
        scores = {(m, s): _seen(v[s]) for m, v in table.items() for s in range(2)}
        frames.append(make_frame(scores).assign(draw=draw, run=lambda f, d=draw: f["run"] + f"_d{d}"))
    return pd.concat(frames, ignore_index=True)


def test_pooled_leaderboard_counts_draw_x_seed_and_pairs_within_draws(make_frame):
    frame = _two_draws(make_frame, {"a": (0.60, 0.66), "b": (0.40, 0.41), "c": (0.20, 0.25)})
    board = build_leaderboard(frame, reference="c")
    a = board[board["method"] == "a"].iloc[0]
    assert (a["seeds"], a["draws"]) == (4, 2)
    assert a["seen_mAP_mean"] == pytest.approx((0.70 + 0.72 + 0.60 + 0.66) / 4)
    # paired to c by (draw, seed): .40, .41, .40, .41
    assert a["vs_reference_seen_mAP"] == pytest.approx(0.405) and a["vs_reference_pairs"] == 4


def test_agreement_same_and_reversed_order(make_frame):
    same = draw_agreement(per_run_table(_two_draws(make_frame, {"a": (0.9, 0.9), "b": (0.5, 0.5),
                                                                 "c": (0.1, 0.1)})), replicates=200)
    row = same.iloc[0]
    assert (row["draw_a"], row["draw_b"], row["methods"]) == (0, 7, 3)
    assert row["tau"] == 1.0 and row["tau_low"] == 1.0 and row["tau_high"] == 1.0
    assert row["order_a"] == "a > b > c" == row["order_b"]
    reversed_ = draw_agreement(per_run_table(_two_draws(make_frame, {"a": (0.1, 0.1), "b": (0.5, 0.5),
                                                                     "c": (0.9, 0.9)})), replicates=200).iloc[0]
    assert reversed_["tau"] == -1.0 and reversed_["order_b"] == "c > b > a"


def test_agreement_interval_is_seeded_and_covers_the_noise(make_frame):
    # Draw 7: b (0.5, 0.3) beats c (0.2, 0.4) on the mean, but seed 1 alone swaps them. A bootstrap replicate that
    # draws seed 1 twice (probability 1/4) gives the order a > c > b: tau = (2 - 1) / 3.
    runs = per_run_table(_two_draws(make_frame, {"a": (0.9, 0.9), "b": (0.5, 0.3), "c": (0.2, 0.4)}))
    one, two = draw_agreement(runs, replicates=400), draw_agreement(runs, replicates=400)
    assert one.equals(two)  # seeded
    row = one.iloc[0]
    assert row["tau"] == pytest.approx(1.0)
    assert row["tau_low"] == pytest.approx(1 / 3) and row["tau_high"] == pytest.approx(1.0)
    assert row["replicates"] == 400


def _write_run(folder, method, seed, make_frame, *, draw=None):
    rows = make_frame({(method, seed): _seen(0.5 + 0.01 * seed)}).to_dict("records")
    append_extra_rows(folder / "metrics.csv", rows)
    if draw is not None:
        (folder / "config.json").write_text(json.dumps({"run_config": {"synthetic_seed": draw}}))


def test_draw_comes_from_the_column_the_run_config_or_zero(make_frame, tmp_path):
    _write_run(tmp_path / "old" / "a" / "seed0", "a", 0, make_frame)            # no config: draw 0
    _write_run(tmp_path / "d7" / "a" / "seed0", "a", 0, make_frame, draw=7)     # config.json: draw 7
    with_column = tmp_path / "pooled.csv"
    rows = make_frame({("a", 0): _seen(0.4)}).assign(draw=11, run="pooled")
    rows[[*TIDY_COLUMNS, "draw"]].to_csv(with_column, index=False)
    frame = load_tidy([tmp_path / "old", tmp_path / "d7", with_column])
    assert sorted(frame.groupby("draw")["run"].first().items()) == [(0, "a_s0"), (7, "a_s0"), (11, "pooled")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # seed 0 of three draws: three replicates, nothing left out
        runs = per_run_table(frame)
    assert sorted(runs["draw"]) == [0, 7, 11]
    csv_path, md_path = write_leaderboard(frame, tmp_path / "board")
    text = md_path.read_text()
    assert "3 (3 draws)" in text and "## Method order across draws" in text
    assert (tmp_path / "board" / "draw_agreement.csv").is_file()


def test_bad_draw_values_are_named(make_frame):
    frame = make_frame({("a", 0): _seen(0.5)}).assign(draw="x")
    with pytest.raises(ValueError, match="column draw must hold integers"):
        load_tidy(frame)


def _full_config(draw):
    """A ``config.json`` as ``ckda run`` writes it: every compared setting present, only the draw varies."""
    train = {"epochs": 12, "epoch_length": "identities", "equal_iterations": True, "num_identities": 8,
             "num_instances": 4}
    return {"run_config": {"model": "vit_small_cpu", "pretrained": "synthetic", "train": train,
                           "synthetic_scale": 1.0, "synthetic_seed": draw}}


def test_run_folders_of_two_draws_pool_on_one_board(make_frame, tmp_path):
    # the same preset on draws 0 and 7: nothing is left out as "not comparable", the board counts 2 x 2
    # replicates per method and ends with the order agreement
    for draw, folder in ((0, tmp_path / "default"), (7, tmp_path / "draw7")):
        for method, base in (("a", 0.6), ("b", 0.4)):
            for seed in (0, 1):
                run = folder / method / f"seed{seed}"
                rows = make_frame({(method, seed): _seen(base + 0.01 * seed + 0.001 * draw)}).to_dict("records")
                append_extra_rows(run / "metrics.csv", rows)
                (run / "config.json").write_text(json.dumps(_full_config(draw)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a run left out would raise RunLeftOutWarning here
        frame = load_tidy([tmp_path / "default", tmp_path / "draw7"])
    assert sorted(frame["draw"].unique()) == [0, 7]
    _, md_path = write_leaderboard(frame, tmp_path / "board")
    board = pd.read_csv(tmp_path / "board" / "leaderboard.csv").set_index("method")
    assert board.loc["a", "seeds"] == 4 and board.loc["a", "draws"] == 2 and board.loc["a", "draw_ids"] == "0 7"
    text = md_path.read_text()
    assert "4 (2 draws)" in text and "Uneven draws" not in text


def test_methods_on_different_draws_are_flagged(make_frame):
    # b ran on draw 0 only: its mean is over another set of draws than a's, and the board says so
    frame = _two_draws(make_frame, {"a": (0.60, 0.66), "b": (0.40, 0.41), "c": (0.20, 0.25)})
    frame = frame[~((frame["method"] == "b") & (frame["draw"] == 7))]
    board = build_leaderboard(frame)
    assert dict(zip(board["method"], board["draw_ids"])) == {"a": "0 7", "b": "0", "c": "0 7"}
    note = leaderboard_markdown(board)
    assert "Uneven draws (paper)" in note and "b: 0;" in note and "a: 0 7" in note
