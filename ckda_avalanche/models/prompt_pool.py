"""L2P-style prompt pool on top of the ViT ReID model (Wang et al., "Learning to Prompt for Continual Learning",
CVPR 2022).

A pool of M prompts, each L_p learnable tokens of width D, with one learnable key per prompt. A sample's query is the
CLS feature of a forward *without* prompts (`ViTReID.query_feature`: no gradient, dropout off); the N prompts whose
keys are most cosine-similar to the query are concatenated into N * L_p extra tokens and inserted after the CLS
token (`ViTReID.forward_features(extra_tokens=...)`). The surrogate loss pulls the selected keys towards their
queries: ``L_pull = mean_b sum_{k in top-N(b)} (1 - cos(q_b, key_k))``. The model only records what it selected
for which query (`pop_selection`); the L2P plugin computes the loss (`losses/l2p.py`).

What was adapted for VI-ReID: (i) the feature that leaves the model is the BNNeck'd CLS token used for retrieval, not
the average of the prompt-token outputs fed to a classifier (L2P's "prompt head"); (ii) the query includes the
modality embedding, so visible and infrared images may select different prompts; (iii) L2P's optional
batch-wise prompt selection / frequency penalty are not implemented (the paper's default selection is per sample).
Avalanche's `LearningToPrompt` could not be reused: with timm 1.0.31 it fails, hard-codes a 768-wide head and 224x224
input, and keeps a second frozen ViT (see docs/avalanche_notes.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .output import ReIDOutput
from .vit_reid import ViTReID


@dataclass(frozen=True)
class PromptPoolConfig:
    """Hyperparameters of the L2P prompt pool (defaults: L2P's published setting, Wang et al. 2022)."""

    pool_size: int = 10
    """M, number of prompts (and keys) in the pool."""
    prompt_length: int = 5
    """L_p, tokens per prompt."""
    top_n: int = 5
    """N, prompts selected per sample by key matching."""
    init_range: float = 1.0
    """Prompts and keys are initialised uniform(-init_range, init_range), as L2P's 'uniform' init."""

    def __post_init__(self) -> None:
        for name in ("pool_size", "prompt_length", "top_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PromptPoolConfig.{name} must be an int >= 1, got {value!r}")
        if self.top_n > self.pool_size:
            raise ValueError(f"PromptPoolConfig.top_n ({self.top_n}) must be <= pool_size ({self.pool_size})")
        if not self.init_range > 0:
            raise ValueError(f"PromptPoolConfig.init_range must be > 0, got {self.init_range}")


class PromptPool(nn.Module):
    """M prompts (M, L_p, D) with keys (M, D); `select` returns the top-N prompt indices per query."""

    def __init__(self, *, embed_dim: int, config: PromptPoolConfig) -> None:
        super().__init__()
        self.config = config
        self.prompts = nn.Parameter(torch.empty(config.pool_size, config.prompt_length, embed_dim))
        self.keys = nn.Parameter(torch.empty(config.pool_size, embed_dim))
        nn.init.uniform_(self.prompts, -config.init_range, config.init_range)
        nn.init.uniform_(self.keys, -config.init_range, config.init_range)

    def select(self, query: torch.Tensor) -> torch.Tensor:
        """Indices (B, N) of the N keys most cosine-similar to each query (B, D); no gradient flows through them."""
        if query.ndim != 2 or query.shape[1] != self.keys.shape[1]:
            raise ValueError(f"PromptPool.select: query must be (B, {self.keys.shape[1]}), got {tuple(query.shape)}")
        cos = F.normalize(query.detach(), dim=1) @ F.normalize(self.keys, dim=1).t()  # (B, M)
        return cos.topk(self.config.top_n, dim=1).indices

    def tokens(self, indices: torch.Tensor) -> torch.Tensor:
        """Selected prompts as extra tokens (B, N * L_p, D)."""
        chosen = self.prompts[indices]  # (B, N, L_p, D)
        return chosen.flatten(1, 2)


class PromptPoolReIDModel(nn.Module):
    """`ViTReID` + `PromptPool`, honouring the model contract of docs/ARCHITECTURE.md.

    `forward(x, modality)` matches prompts for every call (train and eval). The queries and selected indices of the
    latest training forward are kept in `last_selection` for the L2P plugin, which reads and clears them every
    iteration (`pop_selection`) and computes the key-pull loss from them; nothing is kept in eval mode, and the
    query carries no graph, so a deep copy between iterations holds none.
    """

    def __init__(self, *, base: ViTReID, config: PromptPoolConfig) -> None:
        super().__init__()
        self.base = base
        self.pool = PromptPool(embed_dim=base.embed_dim, config=config)
        self.last_selection: tuple[torch.Tensor, torch.Tensor] | None = None

    # --- contract delegation -----------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width D of f and g."""
        return self.base.embed_dim

    @property
    def num_classes(self) -> int:
        """Identities of the current classifier."""
        return self.base.num_classes

    @property
    def batch_modality(self) -> torch.Tensor | None:
        """The wrapped model's `batch_modality` (set by `ReIDBatchPlugin` for plain Avalanche strategies)."""
        return self.base.batch_modality

    @batch_modality.setter
    def batch_modality(self, value: torch.Tensor | None) -> None:
        self.base.batch_modality = value

    def reset_classifier(self, num_classes: int) -> None:
        """New classifier on the wrapped model."""
        self.base.reset_classifier(num_classes)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The wrapped model's groups; the pool's prompts and keys join "other" (full learning rate)."""
        groups = self.base.parameter_groups()
        return {"patch_embed_and_blocks": groups["patch_embed_and_blocks"],
                "other": groups["other"] + list(self.pool.parameters())}

    def query_feature(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen-path query of the wrapped model (no prompts, no gradient)."""
        return self.base.query_feature(x, modality)

    def pool_tokens(self, x: torch.Tensor, modality: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(extra tokens (B, N*L_p, D), queries (B, D), selected indices (B, N)) for a batch."""
        query = self.base.query_feature(x, modality)
        idx = self.pool.select(query)
        return self.pool.tokens(idx), query, idx

    def forward_features(self, x: torch.Tensor, modality: torch.Tensor | None = None, *,
                         extra_tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f, P) with the pool's prompts selected for `x` (plus any `extra_tokens` given, appended after them)."""
        tokens, _, _ = self.pool_tokens(x, modality)
        if extra_tokens is not None:
            tokens = torch.cat([tokens, extra_tokens], dim=1)
        return self.base.forward_features(x, modality, extra_tokens=tokens)

    def forward_head(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """f -> (g, logits)."""
        return self.base.forward_head(feat)

    def forward(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> ReIDOutput | torch.Tensor:
        """Train: `ReIDOutput` (selection kept in `last_selection`); eval: L2-normalised retrieval feature."""
        tokens, query, idx = self.pool_tokens(x, modality)
        out = self.base(x, modality, extra_tokens=tokens)
        self.last_selection = (query.detach(), idx) if self.training else None
        return out

    def pop_selection(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(queries (B, D), selected indices (B, N)) of the latest training forward (then forgotten)."""
        selection, self.last_selection = self.last_selection, None
        return selection
