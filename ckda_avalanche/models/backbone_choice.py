"""Which model a baseline trains: the plain ViT ReID model, or that model plus CKDA's pixel prompters.

CKDA's modality-specific and modality-common pixel-prompt generators (MSP, MCP; Cui, Zhou, Peng, AAAI 2026,
arXiv 2511.15016, docs/method.md §3) are part of the CKDA method, not of the backbone: the baselines' papers (LwF, EWC,
L2P, LSTKC, DKP, ...) train a ViT without them. So every baseline config inherits `BackboneChoice`, whose
``pixel_prompts`` is off by default, and its strategy checks that the model it is given was built that way. The
modality embedding (docs/method.md §2) belongs to the shared backbone and stays on for every method.

Up to generator v6 of the synthetic benchmark every baseline but L2P carried the prompters; ``pixel_prompts=True``
(``finetune[pixel_prompts]`` on the command line) gives that model back. docs/calibration.md says why it changed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = ["BackboneChoice", "check_model_overrides"]


@dataclass(frozen=True)
class BackboneChoice:
    """The model option every baseline config shares (a base class of their dataclasses)."""

    pixel_prompts: bool = False
    """Give the model CKDA's MSP and MCP pixel-prompt generators, trained with it (off: the plain ViT ReID model)."""

    def model_overrides(self) -> dict[str, bool]:
        """`ModelConfig` fields the model must be created with (`create_model(..., config_overrides=...)`)."""
        return {"use_msp": self.pixel_prompts, "use_mcp": self.pixel_prompts}


def check_model_overrides(model: nn.Module, overrides: Mapping[str, Any], *, owner: str) -> None:
    """Raise a ValueError naming ``owner`` (e.g. ``"LwF"``) if ``model.config`` differs from ``overrides``.

    A model without a ``config`` attribute (a user's own module) is not checked."""
    config = getattr(model, "config", None)
    if config is None:
        return
    wrong = {k: (getattr(config, k), v) for k, v in overrides.items()
             if hasattr(config, k) and getattr(config, k) != v}
    if wrong:
        detail = ", ".join(f"{k}={have} (needs {want})" for k, (have, want) in wrong.items())
        raise ValueError(f"{owner}: the model does not match the method config: {detail}; create it with "
                         "create_model(..., config_overrides=method.model_overrides()) or change the config "
                         "(baselines: pixel_prompts=True keeps CKDA's pixel prompters)")
