"""Whether a kept copy of weights is still the live model's: the test behind saving a teacher, an old model or EWC's
latest anchor as "same as the model" instead of holding the same tensors twice in a checkpoint."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["same_weights"]


def same_weights(state: Mapping[str, torch.Tensor], model: nn.Module, *, all_names: bool) -> bool:
    """Whether every tensor of ``state`` equals ``model``'s tensor of the same name (shape, dtype and value, compared
    on the model's device). With ``all_names`` the names must also be exactly the model's; without it ``state`` may
    hold a subset (a teacher without the classifier, EWC's anchors of the parameters only)."""
    mine = model.state_dict()
    if all_names and mine.keys() != state.keys():
        return False
    return all(name in mine and mine[name].shape == value.shape and mine[name].dtype == value.dtype
               and torch.equal(mine[name], value.to(mine[name].device)) for name, value in state.items())
