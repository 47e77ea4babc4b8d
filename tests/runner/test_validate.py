"""Every bad input of ``ckda run`` is one line ``ckda: error: <file or dotted field>: <what was expected>`` (exit 2)
before anything is trained or written: one case per setting below. Also: YAML ``1e-3`` / ``1e6`` are numbers, and a
non-finite loss names the session the CSV numbers (1-based)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from ckda_avalanche.cli import main
from ckda_avalanche.runner.overrides import ConfigError
from ckda_avalanche.runner.validate import load_run_config

# (case id, config file suffix, config file text or None, extra CLI arguments, expected text after "ckda: error: ")
CASES = [
    ("lr_negative", ".yaml", "train:\n  lr: -0.001\n", [], "{cfg}: train.lr: expected > 0, got -0.001"),
    ("lr_nan", ".yaml", "train:\n  lr: .nan\n", [], "{cfg}: train.lr: expected a finite number, got nan"),
    ("lr_nan_json", ".json", '{"train": {"lr": NaN}}', [], "{cfg}: train.lr: expected a finite number, got nan"),
    ("lr_infinite", ".yaml", "train:\n  lr: .inf\n", [], "{cfg}: train.lr: expected a finite number, got inf"),
    ("num_identities_0", ".yaml", "train:\n  num_identities: 0\n", [],
     "{cfg}: train.num_identities: expected >= 1, got 0"),
    ("epochs_0", ".yaml", "train:\n  epochs: 0\n", [], "{cfg}: train.epochs: expected >= 1, got 0"),
    ("eval_mb_size_0", ".yaml", "eval_mb_size: 0\n", [], "{cfg}: eval_mb_size: expected an integer >= 1, got 0"),
    ("unknown_dataset", ".yaml", "datasets: [regdb, sysuu]\n", [], "{cfg}: datasets: unknown dataset 'sysuu'"),
    ("duplicated_dataset", ".yaml", "datasets: [regdb, sysu, regdb]\n", [], "{cfg}: datasets: 'regdb' listed twice"),
    ("no_dataset", ".yaml", "datasets: []\n", [], "{cfg}: datasets: expected at least one of"),
    ("protocol_typo", ".yaml", "protocol: papr\n", [],
     "{cfg}: protocol: expected one of ['paper', 'full'], got 'papr'"),
    ("model_typo", ".yaml", "model: tset\n", [], "{cfg}: model: unknown model 'tset'; expected one of"),
    ("unknown_field", ".yaml", "trian:\n  lr: 0.1\n", [], "{cfg}: RunConfig: unknown field 'trian'"),
    ("override_bad_type", ".yaml", "method_overrides:\n  ckda:\n    beta: high\n", [],
     "{cfg}: method_overrides.ckda.beta: expected a number, got 'high'"),
    ("override_out_of_range", ".yaml", "method_overrides:\n  ckda:\n    merge_lambda: 1.5\n", [],
     "{cfg}: method_overrides.ckda.merge_lambda: expected a value in [0, 1), got 1.5"),
    ("override_unknown_setting", ".yaml", "method_overrides:\n  ckda:\n    betaa: 1.0\n", [],
     "{cfg}: method_overrides.ckda: unknown field 'betaa'"),
    ("override_baseline_training_setting", ".yaml", "method_overrides:\n  finetune:\n    lr: 1.0\n",
     ["--methods", "finetune"],
     "{cfg}: method_overrides.finetune: unknown field 'lr'; valid fields of FineTuneConfig: ['pixel_prompts']"),
    ("override_method_not_run", ".yaml", "method_overrides:\n  lwf:\n    alpha: 2.0\n", [],
     "{cfg}: method_overrides.lwf: 'lwf' is not among the methods being run ['ckda']"),
    ("override_unknown_method", ".yaml", "method_overrides:\n  ckdaa:\n    beta: 1.0\n", [],
     "{cfg}: method_overrides.ckdaa: unknown method 'ckdaa'"),
    ("override_not_a_mapping", ".yaml", "method_overrides:\n  ckda: 3\n", [],
     "{cfg}: method_overrides.ckda: expected a mapping of settings, got 3"),
    ("duplicated_yaml_key", ".yaml", "train:\n  lr: 0.001\n  epochs: 2\n  lr: 0.01\n", [],
     "{cfg}: line 4: key 'lr' given twice (first on line 2)"),
    ("duplicated_json_key", ".json", '{"eval_mb_size": 8, "eval_mb_size": 16}', [],
     "{cfg}: key 'eval_mb_size' given twice"),
    ("config_missing", None, None, ["--config", "{tmp}/none.yaml"], "{tmp}/none.yaml: config file does not exist"),
    ("config_not_yaml", ".yaml", "train: [1,\n", [], "{cfg}: not valid YAML ("),
    ("config_not_a_mapping", ".yaml", "- lr\n", [], "{cfg}: expected a mapping of field names to values"),
    ("negative_seed", None, None, ["--seeds", "-1"], "--seeds: expected integers in [0, 4294967295], got -1"),
    ("repeated_seed", None, None, ["--seeds", "0", "1", "0"], "--seeds: seed 0 given twice"),
    ("out_is_a_file", None, None, ["--out", "{file}"], "--out {file}: is a file; expected a folder"),
    ("out_below_a_file", None, None, ["--out", "{file}/run"], "--out {file}/run: {file} is a file"),
    ("pretrained_missing", None, None, ["--pretrained", "{tmp}/nothing.pth"],
     "--pretrained {tmp}/nothing.pth: no such file"),
    ("pretrained_random_pth", None, None, ["--pretrained", "{random}.pth"],
     "--pretrained {random}.pth: cannot read it as a .pth file of ViT weights (UnpicklingError"),
    ("pretrained_random_npz", None, None, ["--pretrained", "{random}.npz"],
     "--pretrained {random}.npz: cannot read it as a .npz file of ViT weights"),
    ("pretrained_random_safetensors", None, None, ["--pretrained", "{random}.safetensors"],
     "--pretrained {random}.safetensors: cannot read it as a .safetensors file of ViT weights"),
    ("pretrained_wrong_architecture", None, None, ["--pretrained", "{wide}"],
     "--pretrained {wide}: pretrained checkpoint '{wide}' does not match the model"),
    ("pretrained_in_config", ".yaml", "pretrained: {random}.pth\n", [],
     "{cfg}: pretrained: cannot read it as a .pth file"),
    ("dataset_folder_missing", None, None, ["--data", "{partial}"],
     "--data {partial}: no SYSU-MM01/ folder for dataset 'sysu'"),
    ("data_not_a_folder", None, None, ["--data", "{file}"], "--data {file}: not a folder"),
    ("override_without_resume", None, None, ["--resume-override"], "--resume-override: only meaningful with --resume"),
    ("device_typo", None, None, ["--device", "gpu"], "--device gpu: expected auto, cpu, cuda or cuda:N"),
    ("plot_format_typo", None, None, ["--formats", "png", "svgg"], "--formats: unknown plot format 'svgg'"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("inputs")
    file = tmp / "a_file.txt"
    file.write_text("not a folder")
    random = tmp / "random"
    for suffix in (".pth", ".npz", ".safetensors"):
        Path(f"{random}{suffix}").write_bytes(np.random.default_rng(0).bytes(4096))
    wide = tmp / "vit_width96.pth"  # the `test` model is 64 wide
    torch.save(VisionTransformer(img_size=224, patch_size=16, embed_dim=96, depth=2, num_heads=2).state_dict(), wide)
    partial = tmp / "partial_root"
    (partial / "RegDB").mkdir(parents=True)
    return {"tmp": str(tmp), "file": str(file), "random": str(random), "wide": str(wide), "partial": str(partial)}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_before_training(case, inputs, tmp_path, tiny_synthetic_root, capsys):
    name, suffix, text, extra, expected = case
    values = {**inputs, "cfg": str(tmp_path / f"settings{suffix}")}
    args = ["run", "--preset", "test", "--methods", "ckda", "--synthetic-dir", str(tiny_synthetic_root),
            "--out", str(tmp_path / "out"), "--no-progress"]
    if text is not None:
        Path(values["cfg"]).write_text(_fill(text, values))
        args += ["--config", values["cfg"]]
    extra = [_fill(a, values) for a in extra]
    for option in ("--methods", "--out"):
        if option in extra:  # the case's value replaces the default one
            i = args.index(option)
            del args[i:i + 2]
    rc = main(args + extra)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("ckda: error: "), err
    assert _fill(expected, values) in err, err
    assert not (tmp_path / "out").exists(), "a refused run must not create its folder"


def test_yaml_exponent_numbers_are_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  lr: 1e-3\n  grad_clip_norm: 1e6\n  weight_decay: 5.0e-4\n  num_identities: 1e1\n"
                    "eval_mb_size: 1E2\nsynthetic_scale: 1.5e-1\n")
    config = load_run_config("test", path)
    assert config.train.lr == 0.001 and config.train.grad_clip_norm == 1_000_000.0
    assert config.train.weight_decay == 0.0005
    assert config.train.num_identities == 10 and isinstance(config.train.num_identities, int)
    assert config.eval_mb_size == 100 and config.synthetic_scale == 0.15
    path.write_text("train:\n  epochs: 2.5\n")  # an integer field takes integral numbers only
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer, got 2.5"):
        load_run_config("test", path)
    path.write_text("train:\n  lr: '1e-3'\n")  # quoted: a string, as written
    with pytest.raises(ConfigError, match=r"train.lr: expected a number, got '1e-3'"):
        load_run_config("test", path)


def test_non_finite_loss_names_the_csv_session(tmp_path, tiny_synthetic_root, capsys):
    """A loss that blows up in the first session is reported as session 1, the CSV's train_exp of that session."""
    cfg = tmp_path / "huge_lr.json"
    cfg.write_text(json.dumps({"datasets": ["regdb", "sysu"], "synthetic_scale": 0.15,
                               "train": {"lr": 1e30, "amp": "off"}}))
    rc = main(["run", "--preset", "test", "--methods", "finetune", "--synthetic-dir", str(tiny_synthetic_root),
               "--config", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "non-finite training loss" in err and "in session 1 (regdb), epoch 1/1, iteration " in err, err
