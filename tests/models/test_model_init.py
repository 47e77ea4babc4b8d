"""The published initialisation (docs/method.md §3, "Initialisation"), checked against expectations derived by hand.

"Cut at +-2" is read as timm's `trunc_normal_` cuts: at the absolute values -2 and 2, i.e. 100 std away at std 0.02,
so the weights are in effect N(0, 0.02^2): sample std ~0.02, ~4.55% of them beyond 2 std (|w| > 0.04), none
beyond 2. PyTorch's default Linear init (uniform in +-1/sqrt(fan_in), with a uniform bias) fails these checks on
every prompt generator: the 16->768 MSP layer has std 1/sqrt(3*16) = 0.144, the 768->16 layer (std 0.0208) has no
weight beyond 0.036, and biases are not zero.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ckda_avalanche.models import create_model

# The paper model at one block: its prompt generators, embeddings and head are those of the 12-block model, and it
# builds in well under a second.
MODELS = {
    "paper": {"depth": 1},
    "cpu": {},
    "cpu-faithful": {},
    "test": {},
}


def _build(name: str, **extra) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=10, config_overrides={**MODELS[name], **extra})


def _prompter_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in model.prompter.named_modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("name", list(MODELS))
def test_every_prompt_generator_linear_is_trunc_normal_002_with_zero_bias(name):
    model = _build(name)
    linears = _prompter_linears(model)
    assert len(linears) == 6  # MSP: 2 generators x (down, up); MCP: down, up
    for where, layer in linears:
        w = layer.weight.detach().double().flatten()
        n = w.numel()
        # sample std of n normal draws: standard error ~ sigma / sqrt(2n); allow 5 of them
        tolerance = 5 * 0.02 / math.sqrt(2 * n)
        assert abs(float(w.std()) - 0.02) < tolerance, (where, float(w.std()), n)
        assert abs(float(w.mean())) < 5 * 0.02 / math.sqrt(n), where
        assert float(w.abs().max()) <= 2.0, where  # the cut (absolute)
        assert torch.count_nonzero(layer.bias) == 0, where
        if n >= 5000:  # a normal: P(|w| > 2 std) = 4.55%; a uniform of the same std has none beyond 1.73 std
            beyond = float((w.abs() > 0.04).double().mean())
            assert 0.03 < beyond < 0.065, (where, beyond)


@pytest.mark.parametrize("name", list(MODELS))
def test_norms_embeddings_and_classifier_follow_the_published_init(name):
    model = _build(name)
    for where, module in model.named_modules():
        if isinstance(module, (nn.LayerNorm, nn.BatchNorm1d, nn.InstanceNorm2d)) and module.weight is not None:
            assert torch.equal(module.weight, torch.ones_like(module.weight)), where
            assert torch.equal(module.bias, torch.zeros_like(module.bias)), where
    # classifier: bias-free, std 0.02 (not the ReID code bases' 0.001)
    weight = model.head.classifier.weight.detach().double()
    assert model.head.classifier.bias is None
    assert abs(float(weight.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * weight.numel())
    model.reset_classifier(7)
    weight = model.head.classifier.weight.detach()
    assert abs(float(weight.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * weight.numel())
    # CLS token (timm's own init would give std 1e-6), position and modality embeddings: std 0.02
    for tensor in (model.backbone.cls_token, model.backbone.pos_embed, model.modality_embed):
        values = tensor.detach().double().flatten()
        assert abs(float(values.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * values.numel()) + 1e-3
    # every Linear of the backbone too
    for where, layer in model.backbone.named_modules():
        if isinstance(layer, nn.Linear) and layer.weight.numel() >= 4096:
            weight = layer.weight.detach()
            assert abs(float(weight.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * weight.numel()), where
            assert torch.count_nonzero(layer.bias) == 0, where


def _prompt_ratio(model: nn.Module) -> float:
    model.train()
    height, width = model.config.img_size
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, height, width, generator=generator)
    modality = torch.tensor([0, 1] * 8)
    with torch.no_grad():
        spec, com = model.prompter(x, modality)
    return float((spec + com).std() / x.std())


@pytest.mark.parametrize("name", ["paper", "cpu"])
def test_prompt_image_starts_small_against_the_input(name):
    """Bound on std(P) / std(x) at the start of training (train mode), input x ~ N(0, 1), derived by hand.

    MSP: Linear(d -> 16) -> BatchNorm1d(16) -> Linear(16 -> d) -> Dropout(0.1). In train mode the batch norm (weight
    1, bias 0) makes each of the 16 channels unit-variance whatever the first layer did, so each output value is a
    sum of 16 unit-variance terms times N(0, 0.02^2) weights (zero bias): std sqrt(16) * 0.02 = 0.08, times
    1/sqrt(0.9) for the dropout's rescaling: 0.084.
    MCP: h = Linear(d -> 8)(x) has rms sqrt(d) * 0.02 (0.55 for d = 768); h_in (instance norm, 1/0) has rms <= 1;
    the gates are in (0, 1), so |h_mix| <= |h| + |h_in| and rms(ReLU(h_mix)) <= 0.55 + 1 = 1.55; the up layer
    gives sqrt(8) * 0.02 * 1.55 / sqrt(0.9) = 0.093.
    So rms(P_spec + P_com) <= 0.084 + 0.093 = 0.18 (the spec: roughly 0.1). PyTorch's default init gives ~0.6 for
    MSP alone (its 16->768 layer has std 0.144 and a bias of the same size): about 0.7 of the input's std.
    """
    published = _prompt_ratio(_build(name))
    assert published < 0.18, published
    assert published > 0.02, published  # the prompts are there, not switched off
    legacy = _prompt_ratio(_build(name, init="legacy"))
    assert legacy > 0.4, legacy


def test_pretrained_loading_keeps_the_prompt_generators_init(tmp_path):
    model = _build("test")
    before = {k: v.clone() for k, v in model.prompter.state_dict().items()}
    state = {k: torch.full_like(v, 0.5) for k, v in model.backbone.state_dict().items()}
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    torch.manual_seed(0)
    loaded = create_model("test", pretrained=path, num_classes=10)
    assert all(torch.equal(before[k], v) for k, v in loaded.prompter.state_dict().items())
    qkv = loaded.backbone.blocks[0].attn.qkv.weight
    assert torch.equal(qkv, torch.full_like(qkv, 0.5))


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="ModelConfig.init"):
        create_model("test", config_overrides={"init": "xavier"})
