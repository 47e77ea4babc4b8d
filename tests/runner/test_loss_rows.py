"""The runner writes each session's mean unweighted loss terms as ``loss/<term>`` rows of the tidy CSV."""
from __future__ import annotations

import dataclasses

import pandas as pd


def test_run_writes_loss_rows_per_session(tiny_synthetic_root, tmp_path):
    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.runner.config import TEST
    from ckda_avalanche.runner.session_runner import run_single
    from ckda_avalanche.runner.task import RunTask

    config = dataclasses.replace(TEST, datasets=("regdb", "sysu"))
    benchmark = vi_lreid_benchmark(tiny_synthetic_root, datasets=config.datasets, img_size=(64, 32))
    task = RunTask.create("ckda", 0, tmp_path / "ckda" / "seed0", config, run_name="t", device="cpu")
    frame = pd.read_csv(run_single(task, benchmark))
    loss = frame[frame.metric.str.startswith("loss/")]
    by_session = {exp: set(rows.metric) for exp, rows in loss.groupby("train_exp")}
    base = {"loss/identity", "loss/triplet", "loss/cent", "loss/cross"}
    assert by_session[1] == base
    assert by_session[2] == base | {"loss/prompt_consistency", "loss/cka_intra", "loss/cka_inter"}
    assert (loss.eval_dataset == "-").all() and loss.value.notna().all()
