"""`--synthetic-seed N`: the draw is set from the command line and its data folder follows (seed, scale, version)."""
from __future__ import annotations

from pathlib import Path

import pytest

import ckda_avalanche.benchmarks.synthetic as synthetic
from ckda_avalanche.benchmarks.synthetic import SYNTHETIC_VERSION, synthetic_folder
from ckda_avalanche.cli import build_parser, main
from ckda_avalanche.runner.driver import data_root, resolve_config


def test_folder_name_by_hand():
    assert synthetic_folder("data/synthetic", seed=7, scale=1.0) == Path(
        f"data/synthetic/v{SYNTHETIC_VERSION}-seed7-scale1")
    assert synthetic_folder("d", seed=0, scale=0.15).name == f"v{SYNTHETIC_VERSION}-seed0-scale0.15"


@pytest.fixture
def generated(monkeypatch):
    calls = []

    class Summary:
        def __init__(self, root, seed, scale):
            self.root, self.seed, self.scale = root, seed, scale

    def fake(root, *, seed, scale, **_):
        calls.append((Path(root), seed, scale))
        return Summary(root, seed, scale)

    monkeypatch.setattr(synthetic, "generate_synthetic", fake)
    return calls


def test_run_synthetic_seed_sets_the_draw_and_its_folder(generated):
    args = build_parser().parse_args(["run", "--preset", "test", "--methods", "finetune", "--out", "x",
                                      "--synthetic-seed", "7"])
    config = resolve_config(args)
    assert config.synthetic_seed == 7
    root = data_root(args, config)
    assert root == Path("data/synthetic") / f"v{SYNTHETIC_VERSION}-seed7-scale{config.synthetic_scale:g}"
    assert generated == [(root, 7, config.synthetic_scale)]


def test_explicit_dir_wins_and_default_draw_is_the_presets(generated, tmp_path):
    args = build_parser().parse_args(["ablate", "--preset", "test", "--out", "x", "--synthetic-dir", str(tmp_path)])
    config = resolve_config(args)
    assert config.synthetic_seed == 0 and data_root(args, config) == tmp_path


def test_data_synth_defaults_to_the_draw_folder(generated, monkeypatch):
    import ckda_avalanche.cli as cli

    monkeypatch.setattr(cli, "cmd_data_check", lambda args: 0)
    assert main(["data", "synth", "--synthetic-seed", "11", "--scale", "0.5"]) == 0
    assert generated == [(Path("data/synthetic") / f"v{SYNTHETIC_VERSION}-seed11-scale0.5", 11, 0.5)]


def test_eval_and_show_find_a_run_s_draw_where_run_put_it():
    """`ckda eval` and `ckda show` default to the run's own draw folder (derived from its config), as `ckda run`
    does: none of the three may default to a fixed folder, which would hold another draw or none."""
    from ckda_avalanche.cli import build_parser

    parser = build_parser()
    for argv in (["run", "--out", "OUT"], ["eval", "RUN"], ["show", "RUN"]):
        assert parser.parse_args(argv).synthetic_dir is None, argv
