"""`ckda run --logger tensorboard --logger wandb`: Avalanche's TensorBoard and W&B loggers get the ReID scores under
readable names, one step per session, and the run config as hyperparameters; the values equal the tidy CSV's."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ckda_avalanche.cli import main
from ckda_avalanche.evaluation.metric_value import ReIDMetricValue
from ckda_avalanche.evaluation.tracking import flatten_hparams, readable_name

TINY = {"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15, "train": {"lr": 0.002}}


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    from ckda_avalanche.benchmarks.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("tracking")
    root = base / "synthetic"
    generate_synthetic(root, seed=0, scale=0.15)
    config = base / "cfg.json"
    config.write_text(json.dumps(TINY))
    out = base / "grid"
    assert main(["run", "--preset", "test", "--methods", "finetune", "--data", "synthetic", "--synthetic-dir",
                 str(root), "--config", str(config), "--out", str(out), "--no-progress", "--cpus-per-run", "1",
                 "--logger", "tensorboard", "--logger", "wandb"]) == 0
    return out / "finetune" / "seed0"


def test_tensorboard_event_file_holds_the_csv_scores(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logged_run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    csv = pd.read_csv(logged_run / "metrics.csv")
    expected = {
        "mAP/regdb": csv.query("metric == 'mAP' and eval_dataset == 'regdb' and trial == 'mean'"),
        "mAP/sysu": csv.query("metric == 'mAP' and eval_dataset == 'sysu' and trial == 'mean'"),
        "mAP/seen_avg": csv.query("metric == 'mAP' and eval_dataset == 'seen_avg'"),
        "Rank1/regdb": csv.query("metric == 'Rank1' and eval_dataset == 'regdb' and trial == 'mean'"),
        "mINP/sysu": csv.query("metric == 'mINP' and eval_dataset == 'sysu' and trial == 'mean'"),
        "forgetting/mAP/regdb": csv.query("metric == 'forgetting/mAP' and eval_dataset == 'regdb'"),
        "bwt/mAP/seen_avg": csv.query("metric == 'bwt/mAP' and eval_dataset == 'seen_avg'"),
    }
    for tag, rows in expected.items():
        assert tag in tags, f"{tag} missing; have {sorted(tags)}"
        assert len(rows) > 0, tag
        logged = {e.step: e.value for e in acc.Scalars(tag)}
        assert sorted(logged) == sorted(rows.train_exp.tolist()), tag
        for step, value in zip(rows.train_exp, rows.value):
            assert logged[step] == pytest.approx(value, abs=1e-6), (tag, step)
    assert sorted(e.step for e in acc.Scalars("mAP/regdb")) == [1, 2]  # one point per session
    assert not any("trial=" in t or "_Exp" in t for t in tags)  # readable names only


def test_tensorboard_hparams_hold_the_run_config(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(logged_run / "tensorboard"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
               for k, v in data.session_start_info.hparams.items()}
    assert hparams["method"] == "finetune" and hparams["seed"] == 0
    assert hparams["train.lr"] == pytest.approx(0.002)
    assert hparams["model"] == "test"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "mAP/seen_avg" in {m.name.tag for m in experiment.metric_infos}


def test_wandb_offline_run_holds_the_scores_and_config(logged_run):
    (run_file,) = (logged_run / "wandb").glob("offline-run-*/run-*.wandb")
    data = run_file.read_bytes()
    for key in (b"mAP/regdb", b"mAP/seen_avg", b"forgetting/mAP/regdb", b"train.lr"):
        assert key in data, key


def _value(metric: str, dataset: str, trial: str) -> ReIDMetricValue:
    return ReIDMetricValue(None, "x", 0.5, 0, metric=metric, eval_dataset=dataset, trial=trial, train_exp=1,
                           protocol="paper")


def test_readable_names():
    assert readable_name(_value("mAP", "regdb", "mean")) == "mAP/regdb"
    assert readable_name(_value("mAP", "seen_avg", "-")) == "mAP/seen_avg"
    assert readable_name(_value("forgetting/Rank1", "sysu", "mean")) == "forgetting/Rank1/sysu"
    assert readable_name(_value("mAP", "sysu", "all-search/ir->vis/t3")) is None  # single trials: CSV only


def test_flatten_hparams():
    flat = flatten_hparams({"a": 1, "b": {"c": 0.5, "d": {"e": "x"}}, "t": ("regdb", "sysu"), "n": None,
                            "empty": {}, "ok": True})
    assert flat == {"a": 1, "b.c": 0.5, "b.d.e": "x", "t": '["regdb", "sysu"]', "n": "null", "empty": "{}",
                    "ok": True}
