"""MSP and MCP (CKDA §3) against a small reference implementation written here from the method spec.

The reference works on plain tensors copied from the modules (no call into `ckda_avalanche.models.prompts`):
patches are cut with reshape/permute, linear layers and 1x1 convolutions are matrix products, batch norm and
instance norm (affine, tracked running statistics, PyTorch's momentum 0.1 and unbiased running variance) are
written out. It is compared with the modules in train mode (batch / per-image statistics, running-stat updates,
dropout placement) and in eval mode (running statistics, no dropout), at the published 256x128 input with 16x16
prompt patches (a 16x8 grid of 768-value patches).
"""
from __future__ import annotations

import pytest
import torch

from ckda_avalanche.models import ModalityCommonPrompt, ModalitySpecificPrompt, PixelPrompter, create_model

pytestmark = pytest.mark.usefixtures("one_thread")

P = 16
"""Prompt patch side."""
H, W = 256, 128
"""Published input size: a 16x8 grid of 16x16 patches."""
DIM = 3 * P * P
EPS = 1e-5
MOMENTUM = 0.1
DROP = 0.1


# ------------------------------------------------------------------------------------------------ reference maths
def ref_patches(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/P, W/P, C*P*P): patch (r, c) holds pixels [rP:(r+1)P, cP:(c+1)P], channel-major."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // P, P, w // P, P).permute(0, 2, 4, 1, 3, 5).reshape(b, h // P, w // P, c * P * P)


def ref_image(grid: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """Inverse of `ref_patches`."""
    b, rows, cols, _ = grid.shape
    return grid.reshape(b, rows, cols, channels, P, P).permute(0, 3, 1, 4, 2, 5).reshape(b, channels, rows * P,
                                                                                          cols * P)


def ref_linear(v: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return v @ weight.t() + bias


def ref_norm(v: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, weight: torch.Tensor,
             bias: torch.Tensor) -> torch.Tensor:
    return (v - mean) / torch.sqrt(var + EPS) * weight + bias


def ref_msp(x: torch.Tensor, modality: torch.Tensor, state: dict[str, torch.Tensor], *, train: bool,
            pooled_stats: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """P_spec (B, 3, H, W) and the running statistics after the call (docs/method.md §3, MSP).

    Sample b uses generator `modality[b]`: Linear(768->16) -> BatchNorm1d(16) -> Linear(16->768). In train mode the
    batch norm of generator m normalises with the statistics of all patches of the modality-m samples (biased
    variance) and updates its running mean / unbiased variance; in eval mode it uses the running statistics.
    ``pooled_stats`` (a wrong variant, to show the test can tell): train-mode statistics over the whole batch.
    """
    grid = ref_patches(x)
    out = torch.empty_like(grid)
    new_state = dict(state)
    for m in (0, 1):
        rows = [b for b in range(x.shape[0]) if int(modality[b]) == m]
        if not rows:
            continue
        k = f"generators.{m}."
        z = ref_linear(grid[rows], state[k + "down.weight"], state[k + "down.bias"])  # (n, R, C, 16)
        if train:
            flat = z.reshape(-1, z.shape[-1])
            if pooled_stats:
                flat = ref_linear(grid, state[k + "down.weight"], state[k + "down.bias"]).reshape(-1, z.shape[-1])
            mean, var = flat.mean(0), flat.var(0, unbiased=False)
            new_state[k + "norm.running_mean"] = (1 - MOMENTUM) * state[k + "norm.running_mean"] + MOMENTUM * mean
            new_state[k + "norm.running_var"] = ((1 - MOMENTUM) * state[k + "norm.running_var"]
                                                 + MOMENTUM * flat.var(0, unbiased=True))
        else:
            mean, var = state[k + "norm.running_mean"], state[k + "norm.running_var"]
        z = ref_norm(z, mean, var, state[k + "norm.weight"], state[k + "norm.bias"])
        out[rows] = ref_linear(z, state[k + "up.weight"], state[k + "up.bias"])
    return ref_image(out), new_state


def ref_gate(h: torch.Tensor, state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """1x1 conv 8->2, ReLU, 1x1 conv 2->8, sigmoid, at every grid position (h: (B, 8, R, C))."""
    def conv1x1(v: torch.Tensor, layer: str) -> torch.Tensor:
        weight = state[f"{name}.{layer}.weight"][:, :, 0, 0]
        return torch.einsum("oi,birc->borc", weight, v) + state[f"{name}.{layer}.bias"].view(1, -1, 1, 1)

    return torch.sigmoid(conv1x1(torch.relu(conv1x1(h, "0")), "2"))


def ref_mcp_map(x: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """h: Linear(768->8) of every patch as an 8-channel map over the 16x8 patch grid, (B, 8, R, C)."""
    return ref_linear(ref_patches(x), state["down.weight"], state["down.bias"]).permute(0, 3, 1, 2)


def ref_mcp(x: torch.Tensor, state: dict[str, torch.Tensor], *, train: bool, instance_norm: bool = True,
            gates: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """P_com (B, 3, H, W) and the running statistics after the call (docs/method.md §3, MCP).

    h_in = InstanceNorm2d(8, affine, tracked running stats)(h): per image and channel over the grid in train mode
    (running mean / unbiased variance updated with the batch average), running statistics in eval mode;
    a_ori = gate(h), a_in = gate(h_in); h_mix = a_ori h + (1 - a_ori)(a_in h_in); P_com = Linear(8->768)(ReLU(h_mix)).
    Switches as documented by the package: no instance norm -> h_in = h; no gates -> h_mix = h_in.
    """
    h = ref_mcp_map(x, state)
    new_state = dict(state)
    if instance_norm:
        shape = (1, -1, 1, 1)
        if train:
            mean = h.mean(dim=(2, 3), keepdim=True)
            var = h.var(dim=(2, 3), unbiased=False, keepdim=True)
            new_state["instance_norm.running_mean"] = ((1 - MOMENTUM) * state["instance_norm.running_mean"]
                                                       + MOMENTUM * h.mean(dim=(2, 3)).mean(0))
            new_state["instance_norm.running_var"] = ((1 - MOMENTUM) * state["instance_norm.running_var"]
                                                      + MOMENTUM * h.var(dim=(2, 3), unbiased=True).mean(0))
        else:
            mean = state["instance_norm.running_mean"].view(shape)
            var = state["instance_norm.running_var"].view(shape)
        h_in = ref_norm(h, mean, var, state["instance_norm.weight"].view(shape), state["instance_norm.bias"].view(shape))
    else:
        h_in = h
    if gates:
        a_ori, a_in = ref_gate(h, state, "gate_ori"), ref_gate(h_in, state, "gate_in")
        h_mix = a_ori * h + (1 - a_ori) * (a_in * h_in)
    else:
        h_mix = h_in
    out = ref_linear(torch.relu(h_mix).permute(0, 2, 3, 1), state["up.weight"], state["up.bias"])
    return ref_image(out), new_state


# ------------------------------------------------------------------------------------------------ helpers
def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial values everywhere (affine norms, running statistics), so no term can hide behind 0 or 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("weight") and t.ndim == 1:  # norm scales
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            else:
                t.copy_(0.3 * torch.randn(t.shape, generator=g))


def _images(n: int, seed: int) -> torch.Tensor:
    """Images whose samples have different brightness / contrast (per-image style statistics to strip)."""
    g = torch.Generator().manual_seed(seed)
    scale = 0.5 + torch.rand(n, 1, 1, 1, generator=g)
    shift = torch.randn(n, 1, 1, 1, generator=g)
    return torch.randn(n, 3, H, W, generator=g) * scale + shift


def assert_dropout_of(out: torch.Tensor, ref: torch.Tensor, p: float) -> None:
    """``out`` is inverted dropout of ``ref``: each entry 0 or ref / (1 - p), about a fraction p dropped."""
    kept = out != 0
    torch.testing.assert_close(out[kept], ref[kept] / (1 - p), atol=1e-5, rtol=1e-4)
    dropped = 1.0 - kept.float().mean().item()
    assert abs(dropped - p) < 0.02, f"dropped fraction {dropped:.3f}, expected about {p}"


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ MCP
def test_mcp_arranges_patches_on_a_16x8_grid_and_gates_see_h_and_h_in():
    torch.manual_seed(0)
    mcp = ModalityCommonPrompt(dim=DIM).eval()
    _randomise(mcp, 1)
    x = _images(2, 2)
    seen: dict[str, torch.Tensor] = {}
    hooks = [mcp.instance_norm.register_forward_pre_hook(lambda _m, a: seen.__setitem__("in", a[0])),
             mcp.instance_norm.register_forward_hook(lambda _m, _a, o: seen.__setitem__("in_out", o)),
             mcp.gate_ori.register_forward_pre_hook(lambda _m, a: seen.__setitem__("ori", a[0])),
             mcp.gate_in.register_forward_pre_hook(lambda _m, a: seen.__setitem__("gin", a[0]))]
    prompter = PixelPrompter(use_msp=False).eval()  # the prompter derives the grid from the image size
    prompter.mcp = mcp
    prompter(x, torch.zeros(2, dtype=torch.long))
    for hook in hooks:
        hook.remove()
    h = ref_mcp_map(x, _state(mcp))
    assert seen["in"].shape == (2, 8, 16, 8)
    _close(seen["in"], h)
    # h[b, :, r, c] comes from the pixels of patch (r, c): rows 16r..16r+15, columns 16c..16c+15
    patch = x[1, :, 5 * P:6 * P, 3 * P:4 * P].reshape(-1)
    _close(seen["in"][1, :, 5, 3], mcp.down.weight.detach() @ patch + mcp.down.bias.detach())
    _close(seen["ori"], h)
    _close(seen["gin"], seen["in_out"])


@pytest.mark.parametrize("instance_norm,gates", [(True, True), (True, False), (False, True), (False, False)])
def test_mcp_equals_reference_in_eval_mode(instance_norm, gates):
    torch.manual_seed(0)
    mcp = ModalityCommonPrompt(dim=DIM, instance_norm=instance_norm, gates=gates).eval()
    _randomise(mcp, 3)
    x = _images(3, 4)
    state = _state(mcp)
    with torch.no_grad():
        out = ref_image(mcp(ref_patches(x).reshape(3, -1, DIM), (16, 8)).reshape(3, 16, 8, DIM))
    expected, after = ref_mcp(x, state, train=False, instance_norm=instance_norm, gates=gates)
    _close(out, expected)
    assert all(torch.equal(v, after[k]) for k, v in mcp.state_dict().items())  # eval: no statistic moves


def test_mcp_equals_reference_in_train_mode_with_running_stats_and_dropout():
    torch.manual_seed(0)
    mcp = ModalityCommonPrompt(dim=DIM, dropout=DROP).train()
    _randomise(mcp, 5)
    x = _images(4, 6)
    state = _state(mcp)
    prompter = PixelPrompter(use_msp=False, dropout=DROP).train()
    prompter.mcp = mcp
    _, com = prompter(x, torch.tensor([0, 1, 0, 1]))
    expected, after = ref_mcp(x, state, train=True)
    assert_dropout_of(com.detach(), expected, DROP)
    for name in ("instance_norm.running_mean", "instance_norm.running_var"):
        _close(mcp.state_dict()[name], after[name])
        assert not torch.allclose(state[name], after[name])
    # the train-mode reference really differs from the eval-mode one (per-image vs running statistics)
    assert not torch.allclose(expected, ref_mcp(x, state, train=False)[0], atol=1e-3)


def test_mcp_instance_norm_strips_per_image_brightness_and_contrast_in_train_mode():
    torch.manual_seed(0)
    mcp = ModalityCommonPrompt(dim=DIM, dropout=0.0, gates=False).train()
    _randomise(mcp, 7)
    x = _images(1, 8)
    prompter = PixelPrompter(use_msp=False, dropout=0.0).train()
    prompter.mcp = mcp
    # h is affine in x, so 3 x + 2 only rescales and shifts every channel of h: instance norm removes both
    # (the down-projection's bias is shifted consistently: h(3x + 2) = 3 h(x) + const per channel)
    _, a = prompter(x, torch.zeros(1, dtype=torch.long))
    _, b = prompter(3 * x + 2, torch.zeros(1, dtype=torch.long))
    mcp_no_gates = ref_mcp(x, _state(mcp), train=True, gates=False)[0]
    _close(a.detach(), mcp_no_gates)
    _close(a.detach(), b.detach())


# ------------------------------------------------------------------------------------------------ MSP
def _msp() -> ModalitySpecificPrompt:
    torch.manual_seed(0)
    msp = ModalitySpecificPrompt(dim=DIM, dropout=DROP)
    _randomise(msp, 9)
    return msp


def _msp_images(modality: torch.Tensor) -> torch.Tensor:
    """Visible and infrared samples with clearly different statistics (a shared batch norm would mix them)."""
    x = _images(len(modality), 10)
    return x + 3.0 * modality.view(-1, 1, 1, 1).float()


def test_msp_equals_reference_in_eval_mode_per_modality_generator():
    msp = _msp().eval()
    modality = torch.tensor([1, 0, 0, 1, 0])
    x = _msp_images(modality)
    state = _state(msp)
    prompter = PixelPrompter(use_mcp=False).eval()
    prompter.msp = msp
    with torch.no_grad():
        spec, com = prompter(x, modality)
    assert com is None
    expected, after = ref_msp(x, modality, state, train=False)
    _close(spec, expected)
    assert all(torch.equal(v, after[k]) for k, v in msp.state_dict().items())
    # the generator choice matters: the other modality's generator gives another prompt
    swapped, _ = ref_msp(x, 1 - modality, state, train=False)
    assert not torch.allclose(spec, swapped, atol=1e-3)


def test_msp_equals_reference_in_train_mode_with_per_modality_batch_norm_and_dropout():
    msp = _msp().train()
    modality = torch.tensor([1, 0, 0, 1, 0])
    x = _msp_images(modality)
    state = _state(msp)
    prompter = PixelPrompter(use_mcp=False, dropout=DROP).train()
    prompter.msp = msp
    spec, _ = prompter(x, modality)
    expected, after = ref_msp(x, modality, state, train=True)
    assert_dropout_of(spec.detach(), expected, DROP)
    for k, v in msp.state_dict().items():
        if "running" in k:
            _close(v, after[k])
            assert not torch.allclose(v, state[k])  # both generators saw samples and updated their statistics
    # batch norm statistics over the whole batch instead of per modality would give a clearly different prompt
    assert not torch.allclose(expected, ref_msp(x, modality, state, train=True, pooled_stats=True)[0], atol=1e-2)


# ------------------------------------------------------------------------------------------------ whole model
def _paper_model(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("paper", config_overrides={"depth": 1, "embed_dim": 24, "num_heads": 1, **overrides})
    _randomise(model.prompter, 11)
    return model


def test_model_feeds_x_plus_p_spec_plus_p_com_to_the_patch_embedding():
    model = _paper_model().eval()
    modality = torch.tensor([0, 1, 1])
    x = _images(3, 12)
    state = _state(model.prompter)
    seen: list[torch.Tensor] = []
    hook = model.backbone.patch_embed.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
    with torch.no_grad():
        _, prompt = model.forward_features(x, modality)
    hook.remove()
    spec, _ = ref_msp(x, modality, {k[len("msp."):]: v for k, v in state.items() if k.startswith("msp.")},
                      train=False)
    com, _ = ref_mcp(x, {k[len("mcp."):]: v for k, v in state.items() if k.startswith("mcp.")}, train=False)
    _close(prompt, spec + com)
    _close(seen[0], x + spec + com)


def test_model_prompt_in_train_mode_without_dropout_matches_reference():
    model = _paper_model(prompt_dropout=0.0, drop_rate=0.0, drop_path_rate=0.0).train()
    modality = torch.tensor([0, 1, 0, 1])
    x = _msp_images(modality)
    state = _state(model.prompter)
    out = model(x, modality)
    spec, _ = ref_msp(x, modality, {k[len("msp."):]: v for k, v in state.items() if k.startswith("msp.")},
                      train=True)
    com, _ = ref_mcp(x, {k[len("mcp."):]: v for k, v in state.items() if k.startswith("mcp.")}, train=True)
    _close(out.prompt.detach(), spec + com)
