"""ViT ReID model of CKDA (AAAI 2026, arXiv 2511.15016): timm ViT backbone, MSP/MCP pixel prompts, BNNeck head.

Entry point: `create_model(name, pretrained=False, *, num_classes=0, img_size=None, config_overrides=None)` with
the presets "vit_base_reid"/"paper", "vit_tiny_reid"/"cpu" and "vit_micro_reid"/"test".
"""
from .config import ModelConfig
from .heads import BNNeckHead
from .output import ReIDOutput
from .patch_embed import OverlappingPatchEmbed
from .pretrained import PretrainedReport, load_pretrained
from .prompts import (ModalityCommonPrompt, ModalitySpecificPrompt, PatchBottleneckGenerator, PixelPrompter,
                      fold_patches, patchify)
from .registry import create_model, get_model_config, list_models, register_model, resolve_name
from .vit_reid import NUM_MODALITIES, ViTReID

__all__ = [
    "BNNeckHead",
    "ModalityCommonPrompt",
    "ModalitySpecificPrompt",
    "ModelConfig",
    "NUM_MODALITIES",
    "OverlappingPatchEmbed",
    "PatchBottleneckGenerator",
    "PixelPrompter",
    "PretrainedReport",
    "ReIDOutput",
    "ViTReID",
    "create_model",
    "fold_patches",
    "get_model_config",
    "list_models",
    "load_pretrained",
    "patchify",
    "register_model",
    "resolve_name",
]
