"""ViT person-ReID model of CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; §2-§3 of the method spec).

timm's `VisionTransformer` (blocks, CLS token, position embedding, final LayerNorm) with
- an overlapping patch embedding (TransReID, He et al. ICCV 2021): kernel 16, configurable stride;
- a learned modality embedding (2 x D) added to every token after the position embedding;
- pixel-space prompts x' = x + P_spec(x, m) + P_com(x) (MSP / MCP, `prompts.py`) computed before patch embedding;
- a BNNeck head with a bias-free per-session classifier (`heads.py`);
- the published initialisation (`init.py`; ``ModelConfig.init``), before any pretrained backbone weights are loaded.

The model contract (docs/ARCHITECTURE.md): `model(x, modality)` returns a `ReIDOutput` in train mode and the
L2-normalised BNNeck feature in eval mode. No tensors are cached on the model except the transient
`batch_modality` that `plugins.ReIDBatchPlugin` sets for plain Avalanche strategies (shared by deep copies).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from avalanche.models import BaseModel
from timm.layers import trunc_normal_
from timm.models import checkpoint_seq
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from .config import ModelConfig
from .heads import BNNeckHead
from .init import init_published_
from .output import ReIDOutput
from .patch_embed import OverlappingPatchEmbed
from .prompts import PixelPrompter

NUM_MODALITIES = 2
"""Visible (0) and infrared (1)."""


class SharedBatchModality:
    """Holder of the transient per-batch modality; `copy.deepcopy` returns the same holder, not a copy.

    Avalanche strategies call a deep-copied teacher with the student's minibatch and no modality; sharing the
    holder keeps both on the batch that `ReIDBatchPlugin` announced. It is not part of the state dict.
    """

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None

    def __deepcopy__(self, memo: dict) -> SharedBatchModality:
        return self


class ViTReID(nn.Module, BaseModel):
    """Visible-infrared ReID ViT with modality embedding, MSP/MCP pixel prompts and a BNNeck head.

    Also an `avalanche.models.BaseModel` (`get_features`), so Avalanche's LFL can drive it; that path reads the
    modality from `batch_modality`.
    """

    def __init__(self, *, config: ModelConfig, num_classes: int = 0) -> None:
        super().__init__()
        self.config = config
        # timm's head dropout (`drop_rate`) is unused (we have our own head); the published "dropout" acts on the
        # embedded tokens (`token_drop` below) and inside every block (`proj_drop_rate`).
        self.backbone = VisionTransformer(
            img_size=config.img_size,
            patch_size=config.patch_size,
            in_chans=config.in_chans,
            num_classes=0,
            global_pool="token",
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            qkv_bias=config.qkv_bias,
            proj_drop_rate=config.drop_rate,
            attn_drop_rate=config.attn_drop_rate,
            drop_path_rate=config.drop_path_rate,
            embed_layer=partial(OverlappingPatchEmbed, stride=config.stride),
        )
        if config.use_modality_embedding:
            self.modality_embed: nn.Parameter | None = nn.Parameter(torch.zeros(NUM_MODALITIES, config.embed_dim))
            trunc_normal_(self.modality_embed, std=0.02)
        else:
            self.modality_embed = None
        self.token_drop = nn.Dropout(config.drop_rate)
        self.prompter = PixelPrompter(
            in_chans=config.in_chans, patch=config.prompt_patch, use_msp=config.use_msp, use_mcp=config.use_mcp,
            msp_hidden=config.msp_hidden, mcp_channels=config.mcp_channels, mcp_gate_hidden=config.mcp_gate_hidden,
            mcp_instance_norm=config.mcp_instance_norm, mcp_gates=config.mcp_gates, dropout=config.prompt_dropout)
        legacy = config.init == "legacy"
        self.head = BNNeckHead(embed_dim=config.embed_dim, num_classes=num_classes,
                               classifier_std=0.001 if legacy else None)
        self._batch_modality_slot = SharedBatchModality()
        if not legacy:
            init_published_(self, embeddings=(self.backbone.cls_token, self.backbone.pos_embed, self.modality_embed))

    # ------------------------------------------------------------------ properties
    @property
    def batch_modality(self) -> torch.Tensor | None:
        """Modality of the current minibatch, used only when `forward` gets none (set by ReIDBatchPlugin).

        Deep copies of the model share it (see `SharedBatchModality`), so a teacher that Avalanche deep-copied
        (LwF's `prev_model`, LFL) reads the modality of the batch it is given, not the one current at copy time.
        """
        return self._batch_modality_slot.value

    @batch_modality.setter
    def batch_modality(self, value: torch.Tensor | None) -> None:
        self._batch_modality_slot.value = value

    @property
    def embed_dim(self) -> int:
        """Width D of f and g."""
        return self.config.embed_dim

    @property
    def num_classes(self) -> int:
        """Number of identities of the current classifier (0 when there is none)."""
        return self.head.num_classes

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch-token grid (rows, cols) of the backbone."""
        return tuple(self.backbone.patch_embed.grid_size)  # type: ignore[return-value]

    def reset_classifier(self, num_classes: int) -> None:
        """New bias-free classifier over `num_classes` identities (0: none), on the model's device and dtype."""
        self.head.reset_classifier(num_classes)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters split for the published optimiser (§6): ViT blocks and patch embedding (0.5x lr) vs the rest.

        Keys: "patch_embed_and_blocks", "other". Every parameter appears exactly once, trainable or not.
        """
        reduced = list(self.backbone.patch_embed.parameters()) + list(self.backbone.blocks.parameters())
        reduced_ids = {id(p) for p in reduced}
        other = [p for p in self.parameters() if id(p) not in reduced_ids]
        return {"patch_embed_and_blocks": reduced, "other": other}

    # ------------------------------------------------------------------ forward passes
    def forward(self, x: torch.Tensor, modality: torch.Tensor | None = None,
                extra_tokens: torch.Tensor | None = None) -> ReIDOutput | torch.Tensor:
        """Train mode: `ReIDOutput(logits, feat, bn_feat, prompt, modality)`; eval mode: L2-normalised g (B, D).

        `modality` (B,) long, 0 visible / 1 infrared; None reads `self.batch_modality`. `extra_tokens` (B, L, D)
        are inserted right after the CLS token (see `forward_features`).
        """
        modality = self._resolve_modality(x, modality)
        feat, prompt = self._features(x, modality, extra_tokens)
        if not self.training:
            return F.normalize(self.head.bnneck(feat), dim=1)
        bn_feat, logits = self.forward_head(feat)
        return ReIDOutput(logits=logits, feat=feat, bn_feat=bn_feat, prompt=prompt, modality=modality)

    def forward_features(self, x: torch.Tensor, modality: torch.Tensor | None = None, *,
                         extra_tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f, P): the final-LayerNorm CLS token f (B, D) and the prompt image P = P_spec + P_com (or None).

        `extra_tokens` (B, L, D), e.g. from an L2P-style prompt pool, are inserted between the CLS token and the
        patch tokens, after the position and modality embeddings (they get neither).
        """
        return self._features(x, self._resolve_modality(x, modality), extra_tokens)

    def forward_head(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """f -> (g, logits); logits is None when there is no classifier."""
        return self.head(feat)

    def retrieval_feature(self, x: torch.Tensor, modality: torch.Tensor | None = None, *,
                          extra_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised g in any mode (BN and dropout behave as the current mode says); no classifier used."""
        feat, _ = self._features(x, self._resolve_modality(x, modality), extra_tokens)
        return F.normalize(self.head.bnneck(feat), dim=1)

    def prompt_components(self, x: torch.Tensor, modality: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(P_spec, P_com) images for `x` (each None when switched off), e.g. for an orthogonality penalty.

        A separate computation: in train mode its dropout masks differ from those of the last `forward`.
        """
        return self.prompter(x, self._resolve_modality(x, modality))

    def query_feature(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        """CLS feature f (B, D) of a forward without prompts and without extra tokens, for prompt-key matching.

        Runs under `torch.no_grad()` with the backbone's dropout / drop-path switched off for the call (the
        previous train/eval flags of every submodule are restored afterwards). The modality embedding still
        applies, so the modality is needed as for `forward`.
        """
        modality = self._resolve_modality(x, modality)
        modules = [self.backbone, self.token_drop]
        flags = [(m, m.training) for top in modules for m in top.modules()]
        try:
            for top in modules:
                top.eval()
            with torch.no_grad():
                return self._encode(x, modality, None)
        finally:
            for module, flag in flags:
                module.training = flag

    def get_features(self, x: torch.Tensor) -> torch.Tensor:
        """`avalanche.models.BaseModel` hook: pre-BN feature f, modality read from `batch_modality`."""
        return self.forward_features(x, None)[0]

    # ------------------------------------------------------------------ internals
    def _features(self, x: torch.Tensor, modality: torch.Tensor, extra_tokens: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`forward_features` on an already validated modality: x' = x + P_spec + P_com -> encoder -> (f, P)."""
        spec, com = self.prompter(x, modality)
        if spec is not None and com is not None:
            prompt: torch.Tensor | None = spec + com
        else:
            prompt = spec if spec is not None else com
        feat = self._encode(x if prompt is None else x + prompt, modality, extra_tokens)
        return feat, prompt

    def _encode(self, x: torch.Tensor, modality: torch.Tensor, extra_tokens: torch.Tensor | None) -> torch.Tensor:
        """Patch embedding -> CLS + position (+ modality) embedding -> [extra tokens] -> blocks -> LN -> CLS."""
        backbone = self.backbone
        tokens = backbone._pos_embed(backbone.patch_embed(x))  # timm: prepend CLS, add position embedding
        if self.modality_embed is not None:
            tokens = tokens + self.modality_embed.index_select(0, modality).unsqueeze(1)
        tokens = self.token_drop(tokens)
        if extra_tokens is not None:
            self._check_extra_tokens(tokens, extra_tokens)
            tokens = torch.cat([tokens[:, :1], extra_tokens.to(tokens.dtype), tokens[:, 1:]], dim=1)
        tokens = backbone.norm_pre(backbone.patch_drop(tokens))
        if backbone.grad_checkpointing and not torch.jit.is_scripting():
            tokens = checkpoint_seq(backbone.blocks, tokens)
        else:
            tokens = backbone.blocks(tokens)
        return backbone.norm(tokens)[:, 0]

    def _check_extra_tokens(self, tokens: torch.Tensor, extra_tokens: torch.Tensor) -> None:
        if extra_tokens.ndim != 3 or extra_tokens.shape[0] != tokens.shape[0] \
                or extra_tokens.shape[2] != self.embed_dim:
            raise ValueError(
                f"extra_tokens must have shape (B={tokens.shape[0]}, L, D={self.embed_dim}), "
                f"got {tuple(extra_tokens.shape)}")

    def _resolve_modality(self, x: torch.Tensor, modality: torch.Tensor | None) -> torch.Tensor:
        """Validate x and the modality (falling back to `batch_modality`); returns a (B,) long tensor on x's device."""
        expected = (self.config.in_chans, *self.config.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"ViTReID expects images of shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(x.shape)}")
        if modality is None:
            modality = self.batch_modality
        if modality is None:
            raise ValueError(
                "ViTReID needs the modality of every sample (0 visible, 1 infrared): call model(x, modality), or "
                "set model.batch_modality (plugins.ReIDBatchPlugin does this around the strategy's own forward "
                "only; code that calls the model elsewhere, e.g. an Avalanche plugin, must pass the modality)")
        if not isinstance(modality, torch.Tensor):
            raise TypeError(f"modality must be a (B,) integer tensor, got {type(modality).__name__}")
        if modality.ndim != 1 or modality.shape[0] != x.shape[0]:
            raise ValueError(f"modality must have shape ({x.shape[0]},) to match the images, "
                             f"got {tuple(modality.shape)}")
        if modality.dtype.is_floating_point or modality.dtype.is_complex or modality.dtype == torch.bool:
            raise TypeError(f"modality must be an integer tensor, got dtype {modality.dtype}")
        modality = modality.to(device=x.device, dtype=torch.long)
        if bool(((modality < 0) | (modality >= NUM_MODALITIES)).any()):
            raise ValueError(f"modality values must be 0 (visible) or 1 (infrared), got {modality.unique().tolist()}")
        return modality
