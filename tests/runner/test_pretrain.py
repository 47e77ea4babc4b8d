"""`ckda pretrain` on a tiny pool: files written, weights loadable, augmentation and config errors."""
from __future__ import annotations

import json

import pytest
import torch

from ckda_avalanche.cli import main
from ckda_avalanche.models import create_model
from ckda_avalanche.runner.pretrain import PretrainConfig, augment, pretrain


def test_tiny_pretrain_writes_loadable_weights_and_a_report(tmp_path):
    out = tmp_path / "tiny.safetensors"
    config = PretrainConfig(model="test", num_ids=6, steps=3, num_identities=3, num_instances=2, warmup_steps=1)
    lines: list[str] = []
    report = pretrain(config, out, command="test", log_every=1, log=lines.append)
    assert out.is_file() and (tmp_path / "tiny.safetensors.sha256").is_file()
    stored = json.loads((tmp_path / "tiny.json").read_text())
    assert stored["pool_images"] == 6 * 3 * 3 and stored["pretrain_config"]["steps"] == 3
    assert len(stored["loss_curve"]) == 3 and all(loss > 0 for _, loss in stored["loss_curve"])
    assert report["sha256"] == stored["sha256"]
    untrained = create_model("test")
    loaded = create_model("test", str(out))
    changed = [k for k, v in loaded.backbone.state_dict().items() if not torch.equal(v, untrained.backbone.state_dict()[k])]
    assert "blocks.0.attn.qkv.weight" in changed


def test_augment_flips_and_erases_per_image():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 8, 4), dtype=torch.uint8)
    plain = augment(images, generator=torch.Generator().manual_seed(5), erase_p=0.0)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    reference = (images.float() / 255 - mean) / std
    same = [torch.allclose(plain[i], reference[i], atol=1e-6) for i in range(64)]
    mirrored = [torch.allclose(plain[i], reference[i].flip(-1), atol=1e-6) for i in range(64)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 16 < sum(mirrored) < 48  # per image, about half
    erased = augment(images, generator=g, erase_p=1.0)
    zeros = (erased == 0).all(dim=1).flatten(1).sum(1)  # erased pixels per image (all channels 0)
    assert (zeros >= 1).all() and (zeros <= 8 * 4).all()


def test_augment_greyscale_matches_torchvision_per_image():
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (64, 3, 8, 4), dtype=torch.uint8)
    out = augment(images, generator=torch.Generator().manual_seed(3), grayscale_p=0.5, erase_p=0.0)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    colour = (images.float() / 255 - mean) / std
    grey = (v2.Grayscale(num_output_channels=3)(images).float() / 255 - mean) / std
    kinds = []
    for i in range(64):
        for name, ref in (("colour", colour[i]), ("grey", grey[i])):
            if torch.allclose(out[i], ref, atol=1e-5) or torch.allclose(out[i], ref.flip(-1), atol=1e-5):
                kinds.append(name)
                break
        else:
            raise AssertionError(f"image {i} is neither the colour nor the greyscale image (flipped or not)")
    assert 16 < kinds.count("grey") < 48  # per image, about half
    with pytest.raises(ValueError, match="PretrainConfig.grayscale_p"):
        PretrainConfig(grayscale_p=1.5)


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="PretrainConfig.modalities"):
        PretrainConfig(modalities="ir")
    with pytest.raises(ValueError, match="PretrainConfig.objective"):
        PretrainConfig(objective="arcface")
    with pytest.raises(ValueError, match="expected a .safetensors"):
        pretrain(PretrainConfig(model="test", num_ids=4, steps=1, num_identities=2), tmp_path / "x.pth")


def test_cli_pretrain_and_the_pretrained_flag(tmp_path, capsys):
    import argparse

    from ckda_avalanche.runner.driver import resolve_config

    out = tmp_path / "cli.safetensors"
    assert main(["pretrain", "--out", str(out), "--model", "test", "--num-ids", "20", "--steps", "2",
                 "--threads", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    code = main(["pretrain", "--out", str(out), "--model", "test", "--objective", "nope"])
    assert code == 2 and "objective" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own one-line usage error, not a traceback
        main(["pretrain", "--out", str(out), "--steps", "abc"])
    assert "--steps: invalid int value: 'abc'" in capsys.readouterr().err
    flags = argparse.Namespace(preset="cpu", config=None, pretrained="none")
    assert resolve_config(flags).pretrained is None
    flags.pretrained = str(out)
    assert resolve_config(flags).pretrained == str(out)


def test_builtin_weights_validate_for_their_model_and_are_refused_for_another():
    import dataclasses

    from ckda_avalanche.runner.config import CPU
    from ckda_avalanche.runner.overrides import ConfigError
    from ckda_avalanche.runner.validate import _check_pretrained

    faithful = dataclasses.replace(CPU, model="cpu-faithful", pretrained="synthetic-cpu-faithful")
    _check_pretrained(faithful, "config.yaml: pretrained")  # no error
    with pytest.raises(ConfigError, match=r"config.yaml: pretrained: .*another architecture.*patch_size: file 4 vs "
                                          r"model 8"):
        _check_pretrained(dataclasses.replace(faithful, model="cpu"), "config.yaml: pretrained")
    with pytest.raises(ConfigError, match="one of \\['synthetic-cpu-faithful'\\], or 'none'"):
        _check_pretrained(dataclasses.replace(faithful, pretrained="nowhere.safetensors"), "x")


def test_weights_record_the_pool_generator_version_and_domain_specs(tmp_path):
    from safetensors import safe_open

    from ckda_avalanche.benchmarks.synthetic import SYNTHETIC_VERSION
    from ckda_avalanche.benchmarks.synthetic.pretrain_pool import POOL_DOMAINS, POOL_VERSION

    out = tmp_path / "tiny.safetensors"
    config = PretrainConfig(model="test", num_ids=4, steps=1, num_identities=2, num_instances=2, warmup_steps=1)
    pretrain(config, out, command="test", log_every=1, log=lambda line: None)
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
    pool = json.loads(meta["pool"])
    assert pool["generator_version"] == SYNTHETIC_VERSION and pool["pool_version"] == POOL_VERSION
    assert [d["name"] for d in pool["domains"]] == [d.name for d in POOL_DOMAINS]
    assert pool["domains"][0]["palette"][0] == list(POOL_DOMAINS[0].palette[0])
    assert json.loads((tmp_path / "tiny.json").read_text())["pool"] == pool
