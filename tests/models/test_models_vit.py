"""ViTReID forward contract, modality handling, head, extra tokens (the `test` preset keeps each test fast)."""
from __future__ import annotations

import copy
import time

import pytest
import torch
import torch.nn.functional as F

from ckda_avalanche.models import ReIDOutput, ViTReID, create_model


def _batch(model: ViTReID, n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, *model.config.img_size, generator=gen)
    modality = torch.tensor([0, 1] * (n // 2) + [0] * (n % 2))
    return x, modality


def test_train_output_shapes_and_backward_is_fast() -> None:
    torch.manual_seed(0)
    model = create_model("test", num_classes=7)
    x, modality = _batch(model)
    model(x, modality).feat.sum().backward()  # warm-up (first-call allocations)
    # CPU time of one thread, best of 3: wall time (and multi-thread CPU time, which includes OpenMP spin-waiting)
    # depends on the other jobs sharing the machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        timings = []
        for _ in range(3):
            model.zero_grad()
            start = time.process_time()
            out = model(x, modality)
            (out.logits.logsumexp(1).mean() + out.feat.pow(2).mean()).backward()
            timings.append(time.process_time() - start)
    finally:
        torch.set_num_threads(threads)
    assert isinstance(out, ReIDOutput)
    assert out.logits.shape == (4, 7)
    assert out.feat.shape == out.bn_feat.shape == (4, model.embed_dim)
    assert out.prompt.shape == x.shape
    assert torch.equal(out.modality, modality)
    assert model.num_classes == 7
    # every trainable parameter of prompts, embedding and head receives a gradient
    assert model.prompter.mcp.up.weight.grad is not None
    assert model.prompter.msp.generators[1].up.weight.grad is not None
    assert model.modality_embed.grad is not None
    assert min(timings) < 0.5, f"test preset forward+backward took {min(timings):.2f} CPU s"


def test_no_classifier_gives_none_logits_and_eval_is_unit_norm() -> None:
    model = create_model("test")
    x, modality = _batch(model)
    assert model(x, modality).logits is None
    model.eval()
    feats = model(x, modality)
    assert isinstance(feats, torch.Tensor) and feats.shape == (4, model.embed_dim)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(model.retrieval_feature(x, modality), feats)


def _spec_tokens(model: ViTReID, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """Token sequence written from docs/method.md §2: strided-conv patch embedding (row-major grid), CLS prepended,
    position embedding added, then the vector of each sample's modality added to every token (CLS included)."""
    backbone = model.backbone
    proj = backbone.patch_embed.proj
    patches = F.conv2d(x, proj.weight, proj.bias, stride=proj.stride).flatten(2).transpose(1, 2)
    tokens = torch.cat([backbone.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + backbone.pos_embed
    if model.modality_embed is not None:
        tokens = tokens + torch.stack([model.modality_embed[int(m)] for m in modality]).unsqueeze(1)
    return tokens


@pytest.mark.parametrize("use_embedding", [True, False])
def test_modality_embedding_is_added_to_every_token_after_the_position_embedding(use_embedding: bool) -> None:
    torch.manual_seed(0)
    overrides = {"use_msp": False, "use_mcp": False, "stride": 12, "use_modality_embedding": use_embedding}
    model = create_model("test", config_overrides=overrides).eval()
    with torch.no_grad():  # values large enough that a missing or misplaced term shows
        model.backbone.cls_token.normal_()
        model.backbone.pos_embed.normal_()
        if use_embedding:
            model.modality_embed.normal_()
    x, _ = _batch(model, n=4)
    modality = torch.tensor([1, 0, 0, 1])
    seen: list[torch.Tensor] = []
    handle = model.backbone.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model(x, modality)
    handle.remove()
    expected = _spec_tokens(model, x, modality)
    assert seen[0].shape == (4, 1 + 5 * 2, model.embed_dim)
    torch.testing.assert_close(seen[0], expected, atol=1e-5, rtol=1e-4)
    if use_embedding:  # the CLS token carries the modality vector too
        offset = seen[0][:, 0] - (model.backbone.cls_token[0, 0] + model.backbone.pos_embed[0, 0])
        torch.testing.assert_close(offset, model.modality_embed.detach()[modality], atol=1e-5, rtol=1e-4)
        assert not torch.allclose(model(x, modality), model(x, 1 - modality), atol=1e-4)
    else:
        assert not any("modality_embed" in k for k in model.state_dict())
        torch.testing.assert_close(model(x, modality), model(x, 1 - modality))


def test_missing_modality_error_and_batch_modality_fallback() -> None:
    model = create_model("test").eval()
    x, modality = _batch(model)
    with pytest.raises(ValueError, match="modality"):
        model(x)
    model.batch_modality = modality
    torch.testing.assert_close(model(x), model(x, modality))
    torch.testing.assert_close(model.get_features(x), model.forward_features(x, modality)[0])
    with pytest.raises(ValueError, match="shape"):
        model(x, modality[:3])
    with pytest.raises(ValueError, match="0 \\(visible\\) or 1"):
        model(x, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(TypeError, match="integer"):
        model(x, modality.float())
    with pytest.raises(ValueError, match="images of shape"):
        model(torch.randn(2, 3, 32, 32), modality[:2])


def test_reset_classifier_keeps_device_dtype_and_is_bias_free() -> None:
    model = create_model("test", num_classes=3).double()
    model.reset_classifier(11)
    assert model.num_classes == 11
    assert model.head.classifier.bias is None
    assert model.head.classifier.weight.dtype == torch.float64
    x, modality = _batch(model)
    assert model(x.double(), modality).logits.shape == (4, 11)
    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x.double(), modality).logits is None
    with pytest.raises(ValueError, match="num_classes"):
        model.reset_classifier(-1)


def test_bnneck_bias_frozen_at_zero() -> None:
    model = create_model("test", num_classes=5)
    bias = model.head.bnneck.bias
    assert not bias.requires_grad
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    x, modality = _batch(model)
    for _ in range(2):
        out = model(x, modality)
        loss = out.logits.logsumexp(1).mean() + out.bn_feat.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.count_nonzero(bias) == 0
    assert not torch.allclose(model.head.bnneck.weight, torch.ones_like(model.head.bnneck.weight))


def test_extra_tokens_inserted_after_cls() -> None:
    model = create_model("test").eval()
    x, modality = _batch(model, n=2)
    extra = torch.randn(2, 3, model.embed_dim)
    seen: list[torch.Tensor] = []
    handle = model.backbone.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    plain = model(x, modality)
    with_extra = model(x, modality, extra)
    handle.remove()
    n_patches = model.grid_size[0] * model.grid_size[1]
    assert seen[0].shape[1] == 1 + n_patches
    assert seen[1].shape[1] == 1 + 3 + n_patches
    torch.testing.assert_close(seen[1][:, 1:4], extra)  # untouched by position / modality embedding
    torch.testing.assert_close(seen[1][:, 0], seen[0][:, 0])
    torch.testing.assert_close(seen[1][:, 4:], seen[0][:, 1:])
    assert not torch.allclose(plain, with_extra)
    with pytest.raises(ValueError, match="extra_tokens"):
        model(x, modality, torch.randn(2, 3, model.embed_dim + 1))


def test_query_feature_no_prompts_no_grad_and_restores_modes() -> None:
    model = create_model("test")  # train mode: dropout and drop-path active
    x, modality = _batch(model)
    first = model.query_feature(x, modality)
    second = model.query_feature(x, modality)
    assert not first.requires_grad
    torch.testing.assert_close(first, second)  # dropout / drop-path switched off for the call
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(first, model._encode(x, modality, None))
        prompted = model.forward_features(x, modality)[0]
    assert not torch.allclose(first, prompted)


def test_overlapping_patch_grid_256x128_stride12_has_210_patches() -> None:
    model = create_model("paper", config_overrides={"depth": 1, "embed_dim": 24, "num_heads": 1})
    assert model.grid_size == (21, 10)
    assert model.backbone.patch_embed.num_patches == 210 == model.config.num_patches
    assert model.backbone.pos_embed.shape == (1, 211, 24)
    assert model.backbone.patch_embed.proj.kernel_size == (16, 16)
    assert model.backbone.patch_embed.proj.stride == (12, 12)
    model.eval()
    feats = model(torch.randn(1, 3, 256, 128), torch.tensor([1]))
    assert feats.shape == (1, 24)


def test_no_cached_tensors_and_deepcopy_shares_batch_modality() -> None:
    model = create_model("test", num_classes=3)
    x, modality = _batch(model)
    model.batch_modality = modality
    model(x)
    cached = [k for m in model.modules() for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
    assert cached == []
    assert "batch_modality" not in str(list(model.state_dict()))
    teacher = copy.deepcopy(model).eval()  # as Avalanche's LwF keeps prev_model
    model.eval()
    torch.testing.assert_close(teacher(x), model(x))
    flipped = 1 - modality
    model.batch_modality = flipped  # the plugin announces the next batch on the student only
    assert teacher.batch_modality is flipped
    torch.testing.assert_close(teacher(x), teacher(x, flipped))


def test_parameter_groups_partition_all_parameters() -> None:
    model = create_model("test", num_classes=3)
    groups = model.parameter_groups()
    reduced = {id(p) for p in groups["patch_embed_and_blocks"]}
    other = {id(p) for p in groups["other"]}
    assert not reduced & other
    assert reduced | other == {id(p) for p in model.parameters()}
    assert id(model.backbone.blocks[0].attn.qkv.weight) in reduced
    assert id(model.backbone.pos_embed) in other and id(model.head.classifier.weight) in other


def test_bf16_autocast_forward() -> None:
    model = create_model("test", num_classes=3)
    x, modality = _batch(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, torch.tensor([1, 0, 0, 1]))
    assert out.logits.shape == (4, 3) and torch.isfinite(out.feat.float()).all()


def test_patch_embed_cpu_path_equals_convolution() -> None:
    model = create_model("test", config_overrides={"stride": 12})
    embed = model.backbone.patch_embed
    x = torch.randn(2, 3, 64, 32)
    expected = embed.proj(x).flatten(2).transpose(1, 2)
    assert expected.shape == (2, 5 * 2, model.embed_dim)
    torch.testing.assert_close(embed(x), expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="64x32 images"):
        embed(torch.randn(1, 3, 64, 48))
