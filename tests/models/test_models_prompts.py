"""MSP / MCP pixel-prompt generators (CKDA §3): shapes, exact sizes, per-modality routing, gates, switches."""
from __future__ import annotations

import pytest
import torch

from ckda_avalanche.models import (ModalityCommonPrompt, ModalitySpecificPrompt, ModelConfig, PixelPrompter,
                                   create_model, fold_patches, patchify)

DIM = 3 * 16 * 16  # a flattened 16x16 RGB patch: 768 values


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_patchify_fold_roundtrip_and_divisibility() -> None:
    x = torch.randn(2, 3, 64, 32)
    patches = patchify(x, 16)
    assert patches.shape == (2, 8, DIM)
    # patch (row 0, col 1) is pixels [0:16, 16:32], flattened channel-major
    torch.testing.assert_close(patches[:, 1], x[:, :, 0:16, 16:32].reshape(2, -1))
    torch.testing.assert_close(fold_patches(patches, (64, 32), 16), x)
    with pytest.raises(ValueError, match="divisible by the prompt patch"):
        patchify(torch.randn(1, 3, 60, 32), 16)
    with pytest.raises(ValueError, match="prompt_patch"):
        ModelConfig(img_size=(120, 64))
    # without prompts the size only has to hold one patch-embedding kernel
    assert ModelConfig(img_size=(120, 64), use_msp=False, use_mcp=False).img_size == (120, 64)


def test_exact_parameter_counts() -> None:
    # One MSP generator: Linear(768->16) 768*16 + 16 = 12,304; BatchNorm1d(16) weight + bias = 32;
    # Linear(16->768) 16*768 + 768 = 13,056; total 25,392 (two generators: 50,784).
    msp = ModalitySpecificPrompt(dim=DIM)
    assert [_count(g) for g in msp.generators] == [25_392, 25_392]
    # MCP: Linear(768->8) 768*8 + 8 = 6,152; InstanceNorm2d(8, affine) 16; two gates, each
    # Conv1x1(8->2) 16 + 2 = 18 and Conv1x1(2->8) 16 + 8 = 24 -> 42, both 84; Linear(8->768) 8*768 + 768 = 6,912;
    # total 6,152 + 16 + 84 + 6,912 = 13,164.
    assert _count(ModalityCommonPrompt(dim=DIM)) == 13_164
    assert _count(ModalityCommonPrompt(dim=DIM, gates=False)) == 13_164 - 84
    assert _count(ModalityCommonPrompt(dim=DIM, instance_norm=False)) == 13_164 - 16
    # all prompts of the model: 2 * 25,392 + 13,164 = 63,948 ("about 64k" in the paper)
    assert _count(create_model("test").prompter) == 63_948


def test_msp_routes_each_sample_to_its_modality_generator() -> None:
    torch.manual_seed(0)
    msp = ModalitySpecificPrompt(dim=DIM, dropout=0.0).eval()
    patches = torch.randn(4, 8, DIM)
    modality = torch.tensor([1, 0, 0, 1])
    before = msp(patches, modality)
    expected_vis = msp.generators[0](patches[1:3].reshape(-1, DIM)).reshape(2, 8, DIM)
    torch.testing.assert_close(before[1:3], expected_vis)
    with torch.no_grad():
        msp.generators[1].up.weight.zero_()
        msp.generators[1].up.bias.zero_()
    after = msp(patches, modality)
    torch.testing.assert_close(after[1:3], before[1:3])  # visible samples untouched
    assert torch.count_nonzero(after[[0, 3]]) == 0  # infrared prompts came from the zeroed generator
    assert torch.count_nonzero(before[[0, 3]]) > 0


def test_msp_batch_norm_sees_only_its_modality_even_with_one_sample() -> None:
    torch.manual_seed(0)
    msp = ModalitySpecificPrompt(dim=DIM, dropout=0.0).train()
    visible = torch.randn(1, 8, DIM)
    out_a = msp(torch.cat([visible, torch.randn(2, 8, DIM)]), torch.tensor([0, 1, 1]))
    out_b = msp(torch.cat([visible, 5 * torch.randn(2, 8, DIM)]), torch.tensor([0, 1, 1]))
    # the single visible image is normalised over its own 8 patches, independent of the infrared ones
    torch.testing.assert_close(out_a[0], out_b[0])
    assert not torch.allclose(out_a[1:], out_b[1:])
    only_ir = msp(torch.randn(2, 8, DIM), torch.tensor([1, 1]))
    assert only_ir.shape == (2, 8, DIM)
    assert msp.generators[0].norm.num_batches_tracked.item() == 2
    assert msp.generators[1].norm.num_batches_tracked.item() == 3


# MCP and MSP values (train and eval mode, every switch) are checked against an independent reference
# implementation in test_prompts_reference.py.


def test_mcp_switches_change_the_output_and_in_tracks_running_stats() -> None:
    torch.manual_seed(0)
    # train mode: instance norm uses each image's own statistics (fresh running stats make it the identity in eval)
    full = ModalityCommonPrompt(dim=DIM, dropout=0.0).train()
    patches = torch.randn(2, 8, DIM)
    running = full.instance_norm.running_mean.clone()
    reference = full(patches, (4, 2))
    assert not torch.equal(full.instance_norm.running_mean, running)
    for switch in ({"gates": False}, {"instance_norm": False}):
        variant = ModalityCommonPrompt(dim=DIM, dropout=0.0, **switch).train()
        variant.load_state_dict(full.state_dict(), strict=False)
        assert not torch.allclose(variant(patches, (4, 2)), reference, atol=1e-6), switch


def test_prompt_is_sum_of_components_and_switches_reach_the_model() -> None:
    torch.manual_seed(0)
    model = create_model("test").eval()
    x = torch.randn(2, 3, 64, 32)
    modality = torch.tensor([0, 1])
    spec, com = model.prompt_components(x, modality)
    _, prompt = model.forward_features(x, modality)
    torch.testing.assert_close(prompt, spec + com)
    # compare in train mode without dropout: MCP's instance norm then uses per-image statistics
    no_dropout = {"drop_rate": 0.0, "drop_path_rate": 0.0, "prompt_dropout": 0.0}
    base = create_model("test", config_overrides=no_dropout)
    base.load_state_dict(model.state_dict())
    reference = base(x, modality).feat
    for override in ({"use_msp": False}, {"use_mcp": False}, {"mcp_gates": False}, {"mcp_instance_norm": False}):
        variant = create_model("test", config_overrides={**no_dropout, **override})
        variant.load_state_dict(model.state_dict(), strict=False)
        assert not torch.allclose(variant(x, modality).feat, reference, atol=1e-5), override
    torch.testing.assert_close(base(x, modality).feat, reference)  # deterministic, so the differences are real
    no_prompt = create_model("test", config_overrides={"use_msp": False, "use_mcp": False})
    assert no_prompt.prompter.msp is None and no_prompt.prompter.mcp is None
    assert no_prompt(x, modality).prompt is None
    with_only_msp = PixelPrompter(use_mcp=False)
    spec_only, com_none = with_only_msp(x, modality)
    assert com_none is None and spec_only.shape == x.shape
