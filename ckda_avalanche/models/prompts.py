"""Pixel-space prompt generators of CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; §3 of the method spec).

The image x (B, C, H, W) is cut into non-overlapping p x p patches (flattened to C*p*p values each); a generator
maps every patch to a vector of the same length, and the result is folded back into an image-shaped prompt. The
backbone then sees x' = x + P_spec(x, m) + P_com(x).

- MSP (modality-specific prompting, `ModalitySpecificPrompt`): one `PatchBottleneckGenerator` per modality
  (Linear(C*p*p -> 16) -> BatchNorm1d(16) -> Linear(16 -> C*p*p), no activation, Dropout(0.1)), chosen per sample.
- MCP (modality-common prompting, `ModalityCommonPrompt`): one generator shared by both modalities with an
  instance-normalised path and two sigmoid gates that mix the original and the normalised per-patch maps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut (B, C, H, W) into non-overlapping `patch` x `patch` patches: (B, (H/p)*(W/p), C*p*p), row-major grid.

    Each patch is flattened channel-major (as `torch.nn.functional.unfold` does).
    """
    _check_divisible(x.shape[-2:], patch)
    return F.unfold(x, kernel_size=patch, stride=patch).transpose(1, 2)


def fold_patches(patches: torch.Tensor, image_size: tuple[int, int], patch: int) -> torch.Tensor:
    """Inverse of `patchify`: (B, L, C*p*p) back to (B, C, H, W)."""
    _check_divisible(image_size, patch)
    return F.fold(patches.transpose(1, 2), output_size=tuple(image_size), kernel_size=patch, stride=patch)


def _check_divisible(size: torch.Size | tuple[int, int], patch: int) -> None:
    height, width = int(size[0]), int(size[1])
    if height % patch or width % patch:
        raise ValueError(
            f"prompt generators need an image size divisible by the prompt patch ({patch}); got {height}x{width}")


class PatchBottleneckGenerator(nn.Module):
    """One MSP generator: Linear(dim -> hidden) -> BatchNorm1d(hidden) -> Linear(hidden -> dim) -> Dropout.

    No activation between the layers (as published). Works on a flat batch of patch vectors (N, dim); batch norm
    statistics are taken over all patches of the samples given, so even one image has num_patches >= 2 rows.
    """

    def __init__(self, *, dim: int, hidden: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.up = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, patch_vectors: torch.Tensor) -> torch.Tensor:
        """(N, dim) -> (N, dim)."""
        return self.drop(self.up(self.norm(self.down(patch_vectors))))


class ModalitySpecificPrompt(nn.Module):
    """MSP: a separate `PatchBottleneckGenerator` per modality, selected by each sample's modality.

    The samples of each modality are gathered, passed through their generator together (so its batch norm sees
    only that modality) and scattered back into batch order.
    """

    def __init__(self, *, dim: int, hidden: int = 16, dropout: float = 0.1, num_modalities: int = 2) -> None:
        super().__init__()
        self.generators = nn.ModuleList(
            PatchBottleneckGenerator(dim=dim, hidden=hidden, dropout=dropout) for _ in range(num_modalities))

    def forward(self, patches: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """`patches` (B, L, dim), `modality` (B,) long in [0, num_modalities) -> prompt patches (B, L, dim)."""
        batch, length, dim = patches.shape
        pieces: list[torch.Tensor] = []
        order: list[torch.Tensor] = []
        for value, generator in enumerate(self.generators):
            index = torch.nonzero(modality == value, as_tuple=True)[0]
            if index.numel() == 0:
                continue
            selected = patches.index_select(0, index).reshape(-1, dim)
            pieces.append(generator(selected).reshape(index.numel(), length, dim))
            order.append(index)
        if sum(int(i.numel()) for i in order) != batch:
            raise ValueError(
                f"modality values must lie in [0, {len(self.generators)}), got {modality.unique().tolist()}")
        stacked = torch.cat(pieces, dim=0)
        if len(pieces) == 1:
            return stacked
        # Rows of `stacked` are in modality order; the inverse permutation restores batch order (out of place,
        # so autograd and autocast dtypes need no pre-allocated buffer).
        return stacked[torch.argsort(torch.cat(order))]


class ModalityCommonPrompt(nn.Module):
    """MCP: one generator shared by both modalities.

    h = Linear(dim -> c) per patch, arranged as a c-channel map over the patch grid;
    h_in = InstanceNorm2d(c, affine, tracked running stats)(h), which removes per-image (modality) style statistics;
    a_ori = gate_ori(h), a_in = gate_in(h_in), each gate a 1x1 conv c -> g, ReLU, 1x1 conv g -> c, sigmoid;
    h_mix = a_ori * h + (1 - a_ori) * (a_in * h_in);  P_com = Dropout(Linear(c -> dim)(ReLU(h_mix))).

    Ablation switches: `instance_norm=False` uses h_in = h (no normalisation); `gates=False` uses h_mix = h_in
    (the normalised map alone; with both off, h_mix = h). With tracked running statistics, InstanceNorm2d in eval
    mode normalises with the running averages, not with each image's own statistics (the published setting).
    """

    def __init__(self, *, dim: int, channels: int = 8, gate_hidden: int = 2, dropout: float = 0.1,
                 instance_norm: bool = True, gates: bool = True) -> None:
        super().__init__()
        self.down = nn.Linear(dim, channels)
        self.instance_norm = (nn.InstanceNorm2d(channels, affine=True, track_running_stats=True)
                              if instance_norm else None)
        self.gate_ori = _make_gate(channels, gate_hidden) if gates else None
        self.gate_in = _make_gate(channels, gate_hidden) if gates else None
        self.up = nn.Linear(channels, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """`patches` (B, L, dim) on a `grid` (rows, cols) with rows*cols = L -> prompt patches (B, L, dim)."""
        batch, length, _ = patches.shape
        rows, cols = grid
        if rows * cols != length:
            raise ValueError(f"MCP grid {grid} does not match {length} patches")
        h = self.down(patches).transpose(1, 2).reshape(batch, -1, rows, cols)
        h_in = self.instance_norm(h) if self.instance_norm is not None else h
        if self.gate_ori is not None and self.gate_in is not None:
            a_ori = self.gate_ori(h)
            a_in = self.gate_in(h_in)
            h_mix = a_ori * h + (1.0 - a_ori) * (a_in * h_in)
        else:
            h_mix = h_in
        tokens = F.relu(h_mix).flatten(2).transpose(1, 2)
        return self.drop(self.up(tokens))


def _make_gate(channels: int, hidden: int) -> nn.Sequential:
    """Per-position, per-channel sigmoid gate: 1x1 conv c -> hidden, ReLU, 1x1 conv hidden -> c, sigmoid."""
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1),
                         nn.Sigmoid())


class PixelPrompter(nn.Module):
    """Both prompt generators on one image: returns (P_spec, P_com) as images, each None when switched off."""

    def __init__(self, *, in_chans: int = 3, patch: int = 16, use_msp: bool = True, use_mcp: bool = True,
                 msp_hidden: int = 16, mcp_channels: int = 8, mcp_gate_hidden: int = 2,
                 mcp_instance_norm: bool = True, mcp_gates: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        self.patch = patch
        dim = in_chans * patch * patch
        self.msp = ModalitySpecificPrompt(dim=dim, hidden=msp_hidden, dropout=dropout) if use_msp else None
        self.mcp = (ModalityCommonPrompt(dim=dim, channels=mcp_channels, gate_hidden=mcp_gate_hidden,
                                         dropout=dropout, instance_norm=mcp_instance_norm, gates=mcp_gates)
                    if use_mcp else None)

    @property
    def enabled(self) -> bool:
        """True when at least one of MSP / MCP is on."""
        return self.msp is not None or self.mcp is not None

    def forward(self, x: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """x (B, C, H, W), modality (B,) -> (P_spec, P_com), each (B, C, H, W) or None."""
        if not self.enabled:
            return None, None
        size = (int(x.shape[-2]), int(x.shape[-1]))
        patches = patchify(x, self.patch)
        spec = com = None
        if self.msp is not None:
            spec = fold_patches(self.msp(patches, modality), size, self.patch)
        if self.mcp is not None:
            grid = (size[0] // self.patch, size[1] // self.patch)
            com = fold_patches(self.mcp(patches, grid), size, self.patch)
        return spec, com
