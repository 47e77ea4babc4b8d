"""Loading local timm/ImageNet ViT checkpoints (.pth/.pt, .safetensors, JAX .npz) into the ReID backbone.

The checkpoints are made here from a small 224x224 timm ViT with the `test` preset's width and depth (64, 2):
PyTorch and safetensors files hold its state dict; the .npz file holds the same weights renamed and transposed to
the original JAX layout (the inverse of what timm's `_load_weights` reads), so the npz path is checked end to end.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from ckda_avalanche.models import create_model, load_pretrained

WIDTH, DEPTH, HEADS = 64, 2, 2


def _source(width: int = WIDTH, depth: int = DEPTH) -> VisionTransformer:
    torch.manual_seed(1)
    return VisionTransformer(img_size=224, patch_size=16, embed_dim=width, depth=depth, num_heads=HEADS,
                             num_classes=10)


def _to_jax(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """timm ViT state dict -> original JAX checkpoint names and layouts."""
    d = state["cls_token"].shape[-1]
    hd = d // HEADS
    out = {
        "embedding/kernel": state["patch_embed.proj.weight"].permute(2, 3, 1, 0),
        "embedding/bias": state["patch_embed.proj.bias"],
        "cls": state["cls_token"],
        "Transformer/posembed_input/pos_embedding": state["pos_embed"],
        "Transformer/encoder_norm/scale": state["norm.weight"],
        "Transformer/encoder_norm/bias": state["norm.bias"],
        "head/kernel": state["head.weight"].T,
        "head/bias": state["head.bias"],
    }
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    for i in blocks:
        src, dst = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        q, k, v = state[src + "attn.qkv.weight"].chunk(3)
        qb, kb, vb = state[src + "attn.qkv.bias"].chunk(3)
        for name, w, b in (("query", q, qb), ("key", k, kb), ("value", v, vb)):
            out[f"{dst}MultiHeadDotProductAttention_1/{name}/kernel"] = w.T.reshape(d, HEADS, hd)
            out[f"{dst}MultiHeadDotProductAttention_1/{name}/bias"] = b.reshape(HEADS, hd)
        out[f"{dst}MultiHeadDotProductAttention_1/out/kernel"] = \
            state[src + "attn.proj.weight"].reshape(d, HEADS, hd).permute(1, 2, 0)
        out[f"{dst}MultiHeadDotProductAttention_1/out/bias"] = state[src + "attn.proj.bias"]
        for ln, norm in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            out[f"{dst}{ln}/scale"] = state[f"{src}{norm}.weight"]
            out[f"{dst}{ln}/bias"] = state[f"{src}{norm}.bias"]
        for r in range(2):
            out[f"{dst}MlpBlock_3/Dense_{r}/kernel"] = state[f"{src}mlp.fc{r + 1}.weight"].T
            out[f"{dst}MlpBlock_3/Dense_{r}/bias"] = state[f"{src}mlp.fc{r + 1}.bias"]
    return {k: v.detach().contiguous().numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, torch.Tensor]]:
    folder = tmp_path_factory.mktemp("vit_ckpt")
    state = {k: v.clone() for k, v in _source().state_dict().items()}
    paths = {"pth": folder / "vit.pth", "pt": folder / "vit.pt", "safetensors": folder / "vit.safetensors",
             "npz": folder / "vit.npz"}
    torch.save(state, paths["pth"])
    torch.save({"model": state, "epoch": 3}, paths["pt"])
    save_file(state, str(paths["safetensors"]))
    np.savez(paths["npz"], **_to_jax(state))
    return paths, state


@pytest.mark.parametrize("fmt", ["pth", "pt", "safetensors", "npz"])
def test_load_each_format(fmt: str, checkpoints: tuple[dict[str, Path], dict[str, torch.Tensor]]) -> None:
    paths, state = checkpoints
    model = create_model("test", config_overrides={"stride": 12})  # overlapping: grid (5, 2) at 64x32
    prompts_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("prompter.")}
    report = load_pretrained(model, paths[fmt])
    bb = model.backbone.state_dict()
    for key in ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "norm.weight",
                "blocks.1.attn.qkv.weight", "blocks.1.attn.proj.weight", "blocks.0.mlp.fc2.weight"):
        torch.testing.assert_close(bb[key], state[key], msg=key)
    expected_pos = resample_abs_pos_embed(state["pos_embed"], new_size=[5, 2], num_prefix_tokens=1)
    assert bb["pos_embed"].shape == (1, 11, WIDTH)
    torch.testing.assert_close(bb["pos_embed"], expected_pos, atol=1e-5, rtol=1e-4)
    assert set(report.ignored_keys) == ({"head/kernel", "head/bias"} if fmt == "npz" else {"head.weight", "head.bias"})
    assert report.unexpected_keys == ()
    assert "backbone.blocks.0.attn.qkv.weight" in report.loaded_keys
    assert {"modality_embed", "head.bnneck.weight", "prompter.mcp.down.weight"} <= set(report.initialised_keys)
    assert not any(k.startswith("backbone.") for k in report.initialised_keys)
    assert report.resized
    for key, value in prompts_before.items():  # our own parameters keep their initialisation
        torch.testing.assert_close(model.state_dict()[key], value)


def test_create_model_with_local_file(checkpoints: tuple[dict[str, Path], dict[str, torch.Tensor]]) -> None:
    paths, state = checkpoints
    model = create_model("test", pretrained=str(paths["safetensors"]), num_classes=3)
    torch.testing.assert_close(model.backbone.blocks[0].norm1.weight, state["blocks.0.norm1.weight"])
    assert model.num_classes == 3


def test_errors_name_the_file_and_the_problem(tmp_path: Path,
                                              checkpoints: tuple[dict[str, Path], dict[str, torch.Tensor]]) -> None:
    _, state = checkpoints
    model = create_model("test")
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pretrained(model, missing)
    wide = tmp_path / "wide.safetensors"
    save_file(_source(width=32).state_dict(), str(wide))
    with pytest.raises(ValueError, match="wide.safetensors.*width 32 vs model embed_dim 64"):
        load_pretrained(model, wide)
    deep = tmp_path / "deep.npz"
    np.savez(deep, **_to_jax(_source(depth=3).state_dict()))
    with pytest.raises(ValueError, match="deep.npz.*depth 3 blocks vs model depth 2"):
        load_pretrained(model, deep)
    partial = {k: v for k, v in state.items() if k != "norm.weight"}
    partial_path = tmp_path / "partial.pth"
    torch.save(partial, partial_path)
    with pytest.raises(ValueError, match="partial.pth.*lacks backbone weights.*norm.weight"):
        load_pretrained(model, partial_path)
    odd = tmp_path / "vit.ckpt"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError, match="vit.ckpt.*unsupported suffix"):
        load_pretrained(model, odd)
    not_vit = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, not_vit)
    with pytest.raises(ValueError, match="resnet.pth.*not a timm ViT"):
        load_pretrained(model, not_vit)


def test_unexpected_keys_are_reported(tmp_path: Path,
                                      checkpoints: tuple[dict[str, Path], dict[str, torch.Tensor]],
                                      caplog: pytest.LogCaptureFixture) -> None:
    _, state = checkpoints
    path = tmp_path / "extra.pth"
    torch.save({**state, "dist_token": torch.zeros(1, 1, WIDTH)}, path)
    with caplog.at_level("WARNING"):
        report = load_pretrained(create_model("test"), path)
    assert report.unexpected_keys == ("dist_token",)
    assert "dist_token" in caplog.text
