"""What a ReID model returns in training mode (see docs/ARCHITECTURE.md, "Model contract")."""
from __future__ import annotations

from typing import NamedTuple

import torch


class ReIDOutput(NamedTuple):
    """Training-mode output of a ReID model; in eval mode the model returns only the retrieval feature."""

    logits: torch.Tensor | None
    """Identity logits over the current session's identities, or None when there is no classifier."""
    feat: torch.Tensor
    """Pre-BNNeck feature f, (B, D)."""
    bn_feat: torch.Tensor
    """BNNeck output g, (B, D)."""
    prompt: torch.Tensor | None
    """Prompt image P = P_spec + P_com, (B, 3, H, W), or None when prompting is off."""
    modality: torch.Tensor
    """Modality of each sample, (B,) long, 0 visible / 1 infrared."""
