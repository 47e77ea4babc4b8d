"""A paper-sized run is refused, in one line and before anything is written, when it would silently start from
random weights or silently train on the CPU; explicit choices pass."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from ckda_avalanche.cli import main
from ckda_avalanche.runner.config import PAPER, TEST
from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.scale_guard import check_paper_scale, is_paper_sized

CLI_CASES = [
    ("no_pretrained", [], "ckda: error: --pretrained: --preset paper starts from pretrained ViT weights"),
    ("auto_falls_back_to_cpu", ["--pretrained", "none"],
     "ckda: error: --device auto: CUDA is not available here, so --preset paper would train on the CPU"),
    ("ray_without_gpus", ["--pretrained", "none", "--executor", "ray"],
     "ckda: error: --device auto: --preset paper with --executor ray and --gpus-per-run 0 would train on the CPU"),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_paper_preset_refusals_are_one_line_and_write_nothing(case, tmp_path, monkeypatch, capsys):
    name, extra, expected = case
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    out = tmp_path / "out"
    rc = main(["run", "--preset", "paper", "--methods", "finetune", "--synthetic-dir", str(tmp_path / "synth"),
               "--out", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith(expected), err
    assert not out.exists() and not (tmp_path / "synth").exists(), "a refused run must write nothing"


def test_explicit_choices_pass(tmp_path):
    cpu_paper = dataclasses.replace(PAPER, pretrained=None)
    # explicit random initialisation and explicit CPU
    check_paper_scale(cpu_paper, preset="paper", pretrained_flag="none", device="cpu", cuda_available=False)
    # a weights file with CUDA present, and Ray with a GPU share
    with_file = dataclasses.replace(PAPER, pretrained="vit_base.pth")
    check_paper_scale(with_file, preset="paper", device="auto", cuda_available=True)
    check_paper_scale(with_file, preset="paper", device="auto", executor="ray", gpus_per_run=0.25,
                      cuda_available=False)  # the driver machine need not see the GPU of the Ray nodes
    # `pretrained:` in the config file (null = random weights) is an explicit choice too
    cfg = tmp_path / "random.yaml"
    cfg.write_text("pretrained: null\n")
    check_paper_scale(cpu_paper, preset="paper", config_file=cfg, device="cpu", cuda_available=False)
    cfg.write_text("eval_mb_size: 64\n")
    with pytest.raises(ConfigError, match=r"^--pretrained: --preset paper starts from pretrained"):
        check_paper_scale(cpu_paper, preset="paper", config_file=cfg, device="cpu", cuda_available=False)
    # small models are never refused
    check_paper_scale(TEST, preset="test", device="auto", cuda_available=False)


def test_ray_cuda_without_gpu_share_is_refused():
    with_file = dataclasses.replace(PAPER, pretrained="vit_base.pth")
    with pytest.raises(ConfigError, match=r"^--device cuda: with --executor ray and --gpus-per-run 0"):
        check_paper_scale(with_file, preset="paper", device="cuda", executor="ray", gpus_per_run=0.0,
                          cuda_available=True)


def test_paper_sized_models():
    assert is_paper_sized("paper") and is_paper_sized("vit_base_reid")
    assert not any(is_paper_sized(m) for m in ("cpu", "cpu-faithful", "test"))
    # a paper-sized model named through a config file (not the paper preset) is named as such
    custom = dataclasses.replace(TEST, model="vit_base_reid")
    with pytest.raises(ConfigError, match=r"model 'vit_base_reid' \(paper-sized\) would train on the CPU"):
        check_paper_scale(custom, preset="test", pretrained_flag="none", device="auto", cuda_available=False)
