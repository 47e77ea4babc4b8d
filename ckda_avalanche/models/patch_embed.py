"""Overlapping patch embedding: timm's `PatchEmbed` with a stride smaller than the kernel.

Overlapping patches (kernel 16, stride 12) come from TransReID (He et al., ICCV 2021) and are the CKDA backbone
setting (§2 of the method spec): a 256x128 image gives a 21x10 grid. timm's `PatchEmbed` fixes stride = kernel, so
this subclass only swaps its projection for a strided convolution and recomputes the grid; the kernel stays
`patch_size` x `patch_size`, so ImageNet patch-embedding weights copy unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed
from timm.layers.helpers import to_2tuple
from torch import nn


class OverlappingPatchEmbed(PatchEmbed):
    """`PatchEmbed` whose convolution has kernel `patch_size` and stride `stride` (grid = (S - k) // s + 1)."""

    def __init__(
        self,
        *,
        img_size: int | tuple[int, int],
        patch_size: int = 16,
        stride: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        bias: bool = True,
        dynamic_img_pad: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if dynamic_img_pad:
            raise ValueError("OverlappingPatchEmbed does not support dynamic_img_pad")
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                         bias=bias, device=device, dtype=dtype)
        self.stride = to_2tuple(stride)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.stride, bias=bias,
                              device=device, dtype=dtype)
        self.grid_size = tuple(
            (s - k) // st + 1 for s, k, st in zip(self.img_size, self.patch_size, self.stride))
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> patch tokens (B, rows*cols, D), row-major over the grid."""
        if tuple(x.shape[-2:]) != tuple(self.img_size):
            raise ValueError(f"patch embedding expects {self.img_size[0]}x{self.img_size[1]} images, "
                             f"got {x.shape[-2]}x{x.shape[-1]}")
        if x.device.type == "cpu":
            # Same maths as the convolution, as im2col + matmul: on CPU, oneDNN's convolution backward to the input
            # (needed because the prompts are added to the image) was 2.4x slower (52 vs 21 ms per batch of 32
            # 128x64 images, fwd + bwd, 1 thread).
            cols = F.unfold(x, kernel_size=self.patch_size, stride=self.stride).transpose(1, 2)
            tokens = F.linear(cols, self.proj.weight.flatten(1), self.proj.bias)
        else:
            tokens = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm(tokens)

    def feat_ratio(self, as_scalar: bool = True) -> int | tuple[int, int]:
        """Downsampling factor of the token grid relative to the image (the stride)."""
        return max(self.stride) if as_scalar else self.stride

    def set_input_size(self, img_size=None, patch_size=None):  # noqa: ANN001 - timm signature
        """Not supported: the ReID model fixes its input size at construction (build a new model instead)."""
        raise NotImplementedError("OverlappingPatchEmbed has a fixed input size; create a new model instead")
