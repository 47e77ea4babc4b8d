"""The published weight initialisation of the CKDA model (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016;
docs/method.md §3, "Initialisation"), applied by `ViTReID` when ``ModelConfig.init == "published"``.

- every ``nn.Linear`` (ViT blocks, the MSP/MCP prompt generators, the identity classifier): truncated normal with
  std 0.02 and zero bias;
- every ``nn.LayerNorm`` and every affine ``BatchNorm``/``InstanceNorm``: weight 1, bias 0;
- the CLS token, the position embedding and the modality embedding: truncated normal with std 0.02;
- everything else (the patch-embedding convolution, MCP's 1x1 gate convolutions) keeps PyTorch's default.

"Cut at +-2" is read as timm's `trunc_normal_` does it, and as the ViT code bases this line of work builds on call
it (``trunc_normal_(w, std=.02)``): the cut points ``a=-2, b=2`` are **absolute values**, not multiples of the std.
At std 0.02 they lie 100 std away, so the draw is, in effect, a plain normal N(0, 0.02^2) (about 4.6% of the weights
exceed 0.04 in absolute value; none can exceed 2). The other reading (cut at 2 std, |w| <= 0.04) is timm's
`trunc_normal_tf_`; it is not used.

Pretrained backbone weights (`pretrained.load_pretrained`) overwrite the backbone's tensors afterwards; the prompt
generators, the modality embedding and the head keep this initialisation.
"""
from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn

__all__ = ["INIT_MODES", "INIT_STD", "init_linear_", "init_published_"]

INIT_MODES: tuple[str, ...] = ("published", "legacy")
"""Accepted values of `ModelConfig.init`: ``published`` (this module) or ``legacy`` (PyTorch's default for the
prompt generators, timm's ViT init for the backbone and a normal(0, 0.001) classifier: what earlier versions of this
package did)."""

INIT_STD = 0.02
"""Std of the truncated normal of every Linear layer and of the CLS / position / modality embeddings."""

_NORMS = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.GroupNorm)


def init_linear_(layer: nn.Linear) -> None:
    """Truncated normal (std 0.02, cut at the absolute values +-2) weight and zero bias, in place."""
    trunc_normal_(layer.weight, std=INIT_STD)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def init_published_(model: nn.Module, *, embeddings: tuple[nn.Parameter | None, ...] = ()) -> None:
    """Apply the published initialisation to every submodule of ``model`` in place (module order), then to the
    ``embeddings`` parameters (CLS token, position and modality embeddings; None entries are skipped)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            init_linear_(module)
        elif isinstance(module, _NORMS) and getattr(module, "weight", None) is not None:
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for parameter in embeddings:
        if parameter is not None:
            trunc_normal_(parameter, std=INIT_STD)
