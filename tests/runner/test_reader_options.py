"""Every reader option is reachable from ``ckda run --config`` (``readers:``) and from the main flags, with the
published values as defaults; bad values are one line naming the field."""
from __future__ import annotations

import dataclasses
import json

import pytest

from ckda_avalanche.benchmarks.reader_options import ReaderOptions
from ckda_avalanche.cli import build_parser
from ckda_avalanche.runner.config import get_preset
from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.run_state import config_changes
from ckda_avalanche.runner.driver import resolve_config
from ckda_avalanche.runner.execute import build_benchmark
from ckda_avalanche.runner.task import RunTask
from ckda_avalanche.runner.validate import load_run_config

PUBLISHED = {  # the benchmark protocol's single published setting, written out by hand
    "regdb": {"trial": 1},
    "sysu": {"search": "all", "shot": 1, "trial": 0},
    "llcm": {"trial": 0, "max_train_label": None},
    "vcm": {"frames_per_tracklet": 3, "min_tracklet_len": 12, "tracklet_feature": "frame", "seed": 0,
            "camera_filter": False},
}


def test_defaults_are_the_published_setting():
    assert ReaderOptions().for_stream(("regdb", "sysu", "llcm", "vcm")) == PUBLISHED
    assert ReaderOptions().for_stream(("sysu",)) == {"sysu": PUBLISHED["sysu"]}


def test_config_file_and_flags_reach_the_readers(tmp_path, tiny_synthetic_root):
    cfg = tmp_path / "readers.yaml"
    cfg.write_text("datasets: [regdb, vcm]\nsynthetic_scale: 0.15\nreaders:\n  regdb:\n    trial: 3\n"
                   "  vcm:\n    tracklet_feature: mean\n    frames_per_tracklet: 2\n")
    config = load_run_config("test", cfg)
    assert config.readers.regdb.trial == 3 and config.readers.vcm.tracklet_feature == "mean"
    benchmark = build_benchmark(RunTask.create("finetune", 0, tmp_path / "r", config, data_root=tiny_synthetic_root))
    regdb, vcm = (e.reid for e in benchmark.test_stream)
    assert vcm.protocol.group_by_tracklet  # mean over the tracklet's frames
    train_vcm = benchmark.train_stream[1].reid.samples
    per_tracklet = {}
    for s in train_vcm:
        per_tracklet[s.tracklet] = per_tracklet.get(s.tracklet, 0) + 1
    assert set(per_tracklet.values()) == {2}
    default = build_benchmark(RunTask.create("finetune", 0, tmp_path / "r",
                                                     dataclasses.replace(config, readers=ReaderOptions()),
                                                     data_root=tiny_synthetic_root))
    assert {s.path for s in default.train_stream[0].reid.samples} != {s.path for s in
                                                                      benchmark.train_stream[0].reid.samples}
    # flags override the file
    args = build_parser().parse_args(["run", "--preset", "test", "--config", str(cfg), "--out", str(tmp_path / "o"),
                                      "--regdb-trial", "5", "--vcm-tracklet-feature", "frame",
                                      "--llcm-max-train-label", "500", "--vcm-camera-filter"])
    flagged = resolve_config(args)
    assert flagged.readers.regdb.trial == 5 and flagged.readers.vcm.tracklet_feature == "frame"
    assert flagged.readers.llcm.max_train_label == 500 and flagged.readers.vcm.camera_filter
    assert flagged.readers.vcm.frames_per_tracklet == 2  # from the file


@pytest.mark.parametrize("text,expected", [
    ("readers:\n  regdb:\n    trial: 11\n", "readers.regdb.trial: expected 1..10, got 11"),
    ("readers:\n  vcm:\n    tracklet_feature: avg\n", "readers.vcm.tracklet_feature: expected 'frame' or 'mean'"),
    ("readers:\n  vcm:\n    frames_per_tracklet: 20\n",
     "readers.vcm.frames_per_tracklet: expected 1..min_tracklet_len"),
    ("readers:\n  sysu:\n    shot: 2\n", "readers.sysu.shot: expected 1 or 10, got 2"),
    ("readers:\n  llcm:\n    max_train_label: 0\n", "readers.llcm.max_train_label: expected >= 1 or null"),
    ("readers:\n  market:\n    trial: 1\n", "readers: unknown field 'market'"),
])
def test_bad_reader_values_name_the_field(tmp_path, text, expected):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="^" + str(cfg).replace(".", r"\.") + ": " + expected.replace(".", r"\.")
                       .replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_run_config("test", cfg)


def test_method_quirk_and_reader_option_combine():
    options = ReaderOptions()
    assert options.for_stream(("llcm",), {"llcm": {"max_train_label": 500}})["llcm"]["max_train_label"] == 500
    set_500 = dataclasses.replace(options, llcm=dataclasses.replace(options.llcm, max_train_label=500))
    assert set_500.for_stream(("llcm",), {"llcm": {"max_train_label": 500}})["llcm"]["max_train_label"] == 500
    set_300 = dataclasses.replace(options, llcm=dataclasses.replace(options.llcm, max_train_label=300))
    with pytest.raises(ValueError, match=r"readers\.llcm\.max_train_label: 300 contradicts"):
        set_300.for_stream(("llcm",), {"llcm": {"max_train_label": 500}})


def test_older_config_json_without_readers_resumes():
    """A run folder started before reader options existed ran at the defaults: resuming it is no change."""
    record = {"run_config": json.loads(json.dumps(get_preset("test").to_dict()))}
    old = {"run_config": {k: v for k, v in record["run_config"].items() if k != "readers"}}
    assert config_changes(old, record) == []
    changed = json.loads(json.dumps(record))
    changed["run_config"]["readers"]["regdb"]["trial"] = 2
    assert [c[0] for c in config_changes(old, changed)] == ["readers.regdb.trial"]
