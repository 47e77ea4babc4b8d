"""The runner logs per-session gradient shares of every loss term (``grad_share/<point>/<term>``) without changing
training: the same run with the probe replaced by a plugin that does nothing gives identical scores."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from avalanche.core import SupervisedPlugin

pytestmark = pytest.mark.usefixtures("one_thread")


class _NoProbe(SupervisedPlugin):
    session_rows: dict = {}


def _run(root, out, method):
    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.runner.config import TEST
    from ckda_avalanche.runner.session_runner import run_single
    from ckda_avalanche.runner.task import RunTask

    config = dataclasses.replace(TEST, datasets=("regdb", "sysu"))
    benchmark = vi_lreid_benchmark(root, datasets=config.datasets, img_size=(64, 32))
    task = RunTask.create(method, 0, out / method / "seed0", config, run_name="t", device="cpu")
    return pd.read_csv(run_single(task, benchmark))


def test_probe_writes_shares_and_leaves_training_unchanged(tiny_synthetic_root, tmp_path, monkeypatch):
    from ckda_avalanche.runner import training

    probed = _run(tiny_synthetic_root, tmp_path / "with", "ckda")
    monkeypatch.setattr(training, "GradShareProbe", _NoProbe)
    plain = _run(tiny_synthetic_root, tmp_path / "without", "ckda")

    scores = ["mAP", "Rank1", "mINP"]
    keys = ["train_exp", "eval_dataset", "trial", "metric"]
    a = probed[probed.metric.isin(scores)].sort_values(keys).reset_index(drop=True)
    b = plain[plain.metric.isin(scores)].sort_values(keys).reset_index(drop=True)
    assert len(a) > 0 and a[keys].equals(b[keys])
    assert (a.value.to_numpy() == b.value.to_numpy()).all()  # bit for bit
    losses_a = probed[probed.metric.str.startswith("loss/")].value.to_numpy()
    losses_b = plain[plain.metric.str.startswith("loss/")].value.to_numpy()
    assert (losses_a == losses_b).all()
    assert not plain.metric.str.startswith("grad_").any()

    shares = probed[probed.metric.str.startswith("grad_share/")]
    terms = {exp: {m.split("/")[2] for m in rows.metric} for exp, rows in shares.groupby("train_exp")}
    base = {"identity", "triplet", "cent", "cross"}
    assert terms[1] == base
    assert terms[2] == base | {"prompt_consistency", "cka_intra", "cka_inter"}
    for (exp, point), rows in shares.groupby(["train_exp", shares.metric.str.split("/").str[1]]):
        assert point in {"start", "mid", "end"}
        assert rows.value.sum() == pytest.approx(1.0)  # norm shares sum to one
        proj = probed[probed.metric.str.startswith(f"grad_proj/{point}/") & (probed.train_exp == exp)]
        assert proj.value.sum() == pytest.approx(1.0, abs=1e-4)  # projections sum to one
    # L_p acts on the prompt generators only: no share on the shared backbone
    lp = shares[shares.metric.str.endswith("/prompt_consistency")]
    assert (lp.value == 0).all()
    steps = probed[probed.metric == "train_steps"]
    assert list(steps.train_exp) == [1, 2] and (steps.value > 0).all()
