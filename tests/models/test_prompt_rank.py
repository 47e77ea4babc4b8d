"""The documented limitation of the small models: MSP's 16-wide bottleneck is low rank on 16x16 prompt patches
(768 values) but full rank on the `cpu-faithful` model's 2x2 patches (12 values)."""
from __future__ import annotations

import pytest
import torch

from ckda_avalanche.models import create_model


def _msp_linear_rank(model) -> int:
    g = model.prompter.msp.generators[0]
    scale = g.norm.weight / torch.sqrt(g.norm.running_var + g.norm.eps)  # BatchNorm in eval: a diagonal map
    return int(torch.linalg.matrix_rank(g.up.weight @ torch.diag(scale) @ g.down.weight).item())


@pytest.mark.parametrize("name, patch_values, rank", [
    ("paper", 3 * 16 * 16, 16),       # 768 -> 16 -> 768: rank 16 of 768
    ("cpu", 3 * 16 * 16, 16),
    ("cpu-faithful", 3 * 2 * 2, 12),  # 12 -> 16 -> 12: full rank, no bottleneck
])
def test_msp_rank_per_model(name, patch_values, rank):
    model = create_model(name).eval().double()
    g = model.prompter.msp.generators[0]
    assert (g.down.in_features, g.down.out_features) == (patch_values, 16)
    assert _msp_linear_rank(model) == rank
