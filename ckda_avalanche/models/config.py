"""Typed hyperparameters of the ViT ReID model (CKDA, AAAI 2026, arXiv 2511.15016, §2-§3 of docs' method spec).

A `ModelConfig` is a frozen dataclass; the registry (`registry.py`) names a few instances of it (presets) and
`ModelConfig.with_overrides` applies validated, typed changes (e.g. read from a YAML file or the CLI).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, get_type_hints

from .init import INIT_MODES


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture and prompt options of `ViTReID`; every field is validated in `__post_init__`."""

    img_size: tuple[int, int] = (256, 128)
    """Input height and width in pixels."""
    in_chans: int = 3
    """Number of input image channels."""
    patch_size: int = 16
    """Kernel size of the (square) patch embedding convolution."""
    stride: int = 12
    """Stride of the patch embedding; < patch_size gives overlapping patches (12 -> 21x10 grid at 256x128)."""
    embed_dim: int = 768
    """Token width D of the transformer."""
    depth: int = 12
    """Number of transformer blocks."""
    num_heads: int = 12
    """Attention heads per block (must divide embed_dim)."""
    mlp_ratio: float = 4.0
    """Hidden width of each block's MLP, relative to embed_dim."""
    qkv_bias: bool = True
    """Whether the attention qkv projection has a bias (True for the ImageNet ViT checkpoints)."""
    drop_rate: float = 0.03
    """Dropout on the embedded tokens and inside every block (attention projection and MLP)."""
    attn_drop_rate: float = 0.0
    """Dropout on the attention weights."""
    drop_path_rate: float = 0.1
    """Stochastic-depth rate, increasing linearly over the blocks up to this value."""
    use_modality_embedding: bool = True
    """Add a learned per-modality vector (visible / infrared) to every token after the position embedding."""
    use_msp: bool = True
    """Modality-specific prompting (MSP): one pixel-prompt generator per modality."""
    use_mcp: bool = True
    """Modality-common prompting (MCP): one shared pixel-prompt generator."""
    mcp_instance_norm: bool = True
    """Use the instance-normalised path h_in in MCP (off: h_in = h)."""
    mcp_gates: bool = True
    """Use MCP's two sigmoid gates to mix h and h_in (off: h_mix = h_in)."""
    prompt_patch: int = 16
    """Side of the non-overlapping square patches the prompt generators work on."""
    msp_hidden: int = 16
    """Bottleneck width of each MSP generator."""
    mcp_channels: int = 8
    """Channels of MCP's per-patch map h."""
    mcp_gate_hidden: int = 2
    """Hidden channels of each MCP gate (1x1 conv mcp_channels -> this -> mcp_channels)."""
    prompt_dropout: float = 0.1
    """Dropout on the generated prompt patches (MSP and MCP)."""
    init: str = "published"
    """Weight initialisation (`models.init`): "published" (every Linear, the prompt generators and the classifier
    included, truncated normal std 0.02 and zero bias; norms 1/0; CLS, position and modality embeddings truncated
    normal std 0.02) or "legacy" (PyTorch's default Linear init for the prompt generators, timm's ViT init for the
    backbone, a normal(0, 0.001) classifier: not the published setting)."""

    def __post_init__(self) -> None:
        _check_types(self)
        h, w = self.img_size
        for name in ("in_chans", "patch_size", "stride", "embed_dim", "depth", "num_heads", "prompt_patch",
                     "msp_hidden", "mcp_channels", "mcp_gate_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.init not in INIT_MODES:
            raise ValueError(f"ModelConfig.init must be one of {INIT_MODES}, got {self.init!r}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"ModelConfig.mlp_ratio must be > 0, got {self.mlp_ratio}")
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate", "prompt_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), got {value}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"ModelConfig.embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        if h < self.patch_size or w < self.patch_size:
            raise ValueError(
                f"ModelConfig.img_size {self.img_size} is smaller than patch_size {self.patch_size}")
        if self.use_msp or self.use_mcp:
            p = self.prompt_patch
            if h % p or w % p:
                raise ValueError(
                    f"ModelConfig.img_size {self.img_size} must be divisible by prompt_patch ({p}) when MSP or "
                    f"MCP is on: prompts are generated on non-overlapping {p}x{p} patches")

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch-embedding grid (rows, cols): floor((size - patch_size) / stride) + 1 per side."""
        return tuple((s - self.patch_size) // self.stride + 1 for s in self.img_size)  # type: ignore[return-value]

    @property
    def num_patches(self) -> int:
        """Number of patch tokens (the CLS token not counted)."""
        rows, cols = self.grid_size
        return rows * cols

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> ModelConfig:
        """A copy with `overrides` applied; unknown names or wrongly typed values raise a ValueError/TypeError.

        Lists are accepted for `img_size` (YAML has no tuples); ints are accepted for float fields.
        """
        if not overrides:
            return self
        hints = get_type_hints(ModelConfig)
        unknown = sorted(set(overrides) - set(hints))
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {unknown}; valid fields: {sorted(hints)}")
        coerced = {name: _coerce(name, hints[name], value) for name, value in overrides.items()}
        return dataclasses.replace(self, **coerced)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Convert `value` to the annotated type of field `name` where lossless, else raise TypeError."""
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"ModelConfig.{name} expects bool, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"ModelConfig.{name} expects int, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"ModelConfig.{name} expects float, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"ModelConfig.{name} expects a string, got {value!r}")
        return value
    if hint == tuple[int, int]:
        if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
            raise TypeError(f"ModelConfig.{name} expects two ints (height, width), got {value!r}")
        return (int(value[0]), int(value[1]))
    raise TypeError(f"ModelConfig.{name}: unsupported annotation {hint!r}")  # pragma: no cover


def _check_types(config: ModelConfig) -> None:
    """Reject wrongly typed fields given directly to the constructor (same rules as `with_overrides`)."""
    hints = get_type_hints(ModelConfig)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        coerced = _coerce(field.name, hints[field.name], value)
        if coerced is not value:
            object.__setattr__(config, field.name, coerced)
