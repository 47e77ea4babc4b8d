"""Named model presets and `create_model`, in the style of timm's registry.

A preset is a function returning a `ModelConfig`, registered with `@register_model(name, aliases=...)`.
`create_model(name, ...)` builds a `ViTReID` from it, applies typed overrides and optionally loads local
ImageNet weights. Presets (CKDA, arXiv 2511.15016, §2 of the method spec):

- ``vit_base_reid`` (alias ``paper``): ViT-B/16, 256x128, stride 12 (21x10 patches), drop-path 0.1, dropout 0.03.
- ``vit_tiny_reid`` (alias ``cpu``): width 128, 3 blocks, 4 heads, 32x16 input with 8x8 patches, no token
  dropout, for CPU runs (the default leaderboard).
- ``vit_tiny_faithful_reid`` (alias ``cpu-faithful``): the same width and depth with overlapping 4x4 patches at
  stride 3 (10x5 tokens) and 2x2 prompt patches (a 16x8 prompt grid, as in the paper).
- ``vit_micro_reid`` (alias ``test``): width 64, 2 blocks, 64x32, for unit tests.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .vit_reid import ViTReID

PresetFn = Callable[[], ModelConfig]

_PRESETS: dict[str, PresetFn] = {}
_ALIASES: dict[str, str] = {}


def register_model(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[PresetFn], PresetFn]:
    """Decorator registering a zero-argument function returning a `ModelConfig` under `name` (and `aliases`)."""

    def decorator(fn: PresetFn) -> PresetFn:
        for key in (name, *aliases):
            if key in _PRESETS or key in _ALIASES:
                raise ValueError(f"model name {key!r} is already registered")
        _PRESETS[name] = fn
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return decorator


def list_models(include_aliases: bool = False) -> list[str]:
    """Sorted registered names (and aliases when asked)."""
    names = list(_PRESETS)
    if include_aliases:
        names += list(_ALIASES)
    return sorted(names)


def resolve_name(name: str) -> str:
    """Canonical registered name for `name` or an alias; a clear error listing the choices otherwise."""
    if name in _PRESETS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    raise ValueError(f"unknown model {name!r}; registered: {list_models(include_aliases=True)}")


def get_model_config(name: str, config_overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """The preset `ModelConfig` of `name` with `config_overrides` (field name -> value) applied and validated."""
    return _PRESETS[resolve_name(name)]().with_overrides(config_overrides)


def create_model(
    name: str,
    pretrained: bool | str | Path = False,
    *,
    num_classes: int = 0,
    img_size: tuple[int, int] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> ViTReID:
    """Build the registered model `name`.

    Args:
        name: a registered name or alias (`list_models(True)`).
        pretrained: False for random init; a path to a local timm/ImageNet ViT checkpoint (.pth/.pt/.bin,
            .safetensors or JAX .npz) to load into the backbone. True is refused: nothing is downloaded.
        num_classes: identities of the initial classifier (0: none until `reset_classifier`).
        img_size: (height, width) override, shorthand for `config_overrides={"img_size": ...}`.
        config_overrides: `ModelConfig` field -> value; unknown fields or wrong types raise.
    """
    overrides = dict(config_overrides or {})
    if img_size is not None:
        if "img_size" in overrides and tuple(overrides["img_size"]) != tuple(img_size):
            raise ValueError(f"img_size={img_size} conflicts with config_overrides['img_size']="
                             f"{overrides['img_size']}")
        overrides["img_size"] = img_size
    config = get_model_config(name, overrides)
    model = ViTReID(config=config, num_classes=num_classes)
    if pretrained is True:
        raise ValueError("pretrained=True would download weights; pass the path of a local checkpoint file instead")
    if pretrained:
        from .pretrained import load_pretrained

        load_pretrained(model, pretrained)
    return model


@register_model("vit_base_reid", aliases=("paper",))
def vit_base_reid() -> ModelConfig:
    """The published CKDA backbone: ViT-B/16 at 256x128 with overlapping patches (stride 12)."""
    return ModelConfig(img_size=(256, 128), patch_size=16, stride=12, embed_dim=768, depth=12, num_heads=12,
                       drop_path_rate=0.1, drop_rate=0.03)


@register_model("vit_tiny_reid", aliases=("cpu",))
def vit_tiny_reid() -> ModelConfig:
    """CPU-sized model for the default synthetic leaderboard: width 128, 3 blocks, 4 heads at 32x16 with 8x8 patches
    (4x2 tokens); prompts keep 16x16 patches (2x1 grid). Token dropout off (its masks cost ~18% of a CPU step). 32x16 rather
    than 64x32: one session reaches about twice the cross-modality mAP in half the time (docs/calibration.md)."""
    return ModelConfig(img_size=(32, 16), patch_size=8, stride=8, embed_dim=128, depth=3, num_heads=4,
                       drop_path_rate=0.1, drop_rate=0.0)


@register_model("vit_tiny_faithful_reid", aliases=("cpu-faithful",))
def vit_tiny_faithful_reid() -> ModelConfig:
    """The ``cpu`` width and depth with the published structure at 1/8 of the image side: 32x16 input, overlapping
    4x4 patches at stride 3 (the paper's 16/12 ratio; 10x5 = 50 tokens) and 2x2 prompt patches, so MSP/MCP work on
    a 16x8 prompt grid as at 256x128 with 16x16 patches. About 2x the step cost of ``cpu`` (docs/pretraining.md).
    Its synthetic pretrained backbone ships as ``--pretrained synthetic-cpu-faithful``."""
    return ModelConfig(img_size=(32, 16), patch_size=4, stride=3, embed_dim=128, depth=3, num_heads=4,
                       prompt_patch=2, drop_path_rate=0.1, drop_rate=0.0)


@register_model("vit_micro_reid", aliases=("test",))
def vit_micro_reid() -> ModelConfig:
    """Unit-test model: width 64, 2 blocks, 2 heads at 64x32 (4x2 patch grid); forward + backward in ms."""
    return ModelConfig(img_size=(64, 32), patch_size=16, stride=16, embed_dim=64, depth=2, num_heads=2,
                       drop_path_rate=0.1, drop_rate=0.03)
