"""`CKDAConfig`: every hyperparameter, ablation (docs/method.md §8), quirk (section 7) and option of CKDA as one field.

CKDA: Cui, Zhou, Peng, "Cross-modality Knowledge Disentanglement and Alignment for Visible-Infrared Lifelong
Person Re-identification", AAAI 2026, arXiv 2511.15016. Defaults are the published configuration (`CKDA_PAPER`).

Where each field acts:
- loss weights -> `loss_config()` (the criterion) and the plugins built by `strategies.ckda.CKDA`;
- model ablations -> `model_overrides()`, to pass as ``create_model(..., config_overrides=cfg.model_overrides())``
  (CKDA checks that the model it gets was built with them);
- quirks (b) and (c) -> `stream_overrides()`, keyword arguments of ``vi_lreid_benchmark``;
- quirk (a) -> the CKA plugin (prototype computation).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ckda_avalanche.losses.reid_criterion import ReIDLossConfig

__all__ = ["CKDAConfig", "CKDA_PAPER", "CKDA_ABLATIONS", "ABLATION_FLAGS", "QUIRK_FLAGS", "CKDA_VARIANT_ALIASES"]

ABLATION_FLAGS = ("no_msp", "no_mcp", "no_mcp_instance_norm", "no_mcp_gates", "no_modality_embedding",
                  "no_prompt_consistency", "inter_only", "intra_only", "no_cka", "no_merge", "no_centre", "finetune")
"""The ablations of docs/method.md §8, one boolean field each."""


@dataclass(frozen=True)
class CKDAConfig:
    """Hyperparameters, ablations, quirks and options of CKDA (defaults: the published setting)."""

    # --- published hyperparameters
    alpha: float = 1.0
    """Weight of the prompt consistency L_p."""
    beta: float = 1.0
    """Overall weight of CKA."""
    mu: float = 0.5
    """Mix of CKA: (1 - mu) L_intra + mu L_inter."""
    intra_weight: float | None = None
    """Option (docs/method.md §4): weight of L_intra on its own, replacing beta (1 - mu); None = the (beta, mu) form."""
    inter_weight: float | None = None
    """Option (docs/method.md §4): weight of L_inter on its own, replacing beta mu; None = the (beta, mu) form."""
    affinity_scale: float = 0.1
    """s in A_ab = softmax_b(s cos(r_a, r_b)) (published 0.1; see `sharp_affinity`)."""
    prototype_tau: float = 0.1
    """Temperature of r(u, Q) = softmax_k(cos(u, q_k) / tau)."""
    merge_lambda: float = 0.7
    """Weight of the previous merged model in the end-of-session EMA."""
    w_new: float = 1.0
    """Weight of the cross-modal centre term."""
    centre_mix: float = 0.5
    """c: mix between L_cent (1 - c) and L_cross (c)."""
    triplet_margin: float = 0.1
    """Margin of every batch-hard triplet."""
    prototype_batch_size: int = 64
    """Batch size of the end-of-session prototype pass."""
    # --- ablations (docs/method.md §8)
    no_msp: bool = False
    """Ablation: no modality-specific prompts (model)."""
    no_mcp: bool = False
    """Ablation: no modality-common prompt (model)."""
    no_mcp_instance_norm: bool = False
    """Ablation: MCP without its instance-norm path (model)."""
    no_mcp_gates: bool = False
    """Ablation: MCP without its gates (model)."""
    no_modality_embedding: bool = False
    """Ablation: no modality embedding (model)."""
    no_prompt_consistency: bool = False
    """Ablation: alpha = 0."""
    inter_only: bool = False
    """Ablation: CKA with L_inter only (L_intra weight 0, L_inter weight unchanged)."""
    intra_only: bool = False
    """Ablation: CKA with L_intra only (L_inter weight 0, L_intra weight unchanged)."""
    no_cka: bool = False
    """Ablation: beta = 0."""
    no_merge: bool = False
    """Ablation: no end-of-session weight merge (lambda = 0)."""
    no_centre: bool = False
    """Ablation: w_new = 0."""
    finetune: bool = False
    """Ablation: plain fine-tuning with the same model (no L_p, no CKA, no merge; base loss only)."""
    # --- quirks of the published setting (docs/method.md §7)
    quirk_regdb_thermal_from_visible: bool = False
    """Quirk (a): RegDB "thermal" prototypes computed from visible images."""
    quirk_llcm_flip_test_modality: bool = False
    """Quirk (b): LLCM test images passed with the opposite modality flag (stream option)."""
    quirk_llcm_max_train_label_500: bool = False
    """Quirk (c): LLCM training keeps only identity labels < 500 (stream option)."""
    # --- options (not in the published setting)
    sharp_affinity: bool = False
    """Option: s = 10 (divide by 0.1) instead of `affinity_scale`."""
    normalized_student: bool = False
    """Option: CKA student feature L2norm(BN(f)) instead of the pre-BN f."""
    accumulate_prototypes: bool = False
    """Option: align with the prototypes of all past sessions, not only the previous one."""
    orthogonality: bool = False
    """Option: add the P_spec / P_com orthogonality penalty."""
    orthogonality_weight: float = 1.0
    """Weight of the orthogonality penalty when `orthogonality` is on."""
    legacy_init: bool = False
    """Option (not published): the model's earlier initialisation (PyTorch's default Linear init for the prompt
    generators, a normal(0, 0.001) classifier; ``ModelConfig.init = "legacy"``), to measure what the published one
    changes."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool) and not isinstance(value, bool):
                raise TypeError(f"CKDAConfig.{f.name}: expected bool, got {value!r}")
            if f.type in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"CKDAConfig.{f.name}: expected a number, got {value!r}")
                if value < 0:
                    raise ValueError(f"CKDAConfig.{f.name}: expected >= 0, got {value}")
        for name in ("intra_weight", "inter_weight"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"CKDAConfig.{name}: expected None or a number >= 0, got {value!r}")
        if not 0.0 <= self.mu <= 1.0 or not 0.0 <= self.centre_mix <= 1.0:
            raise ValueError(f"CKDAConfig.mu and centre_mix must be in [0, 1], got {self.mu}, {self.centre_mix}")
        if not self.merge_lambda < 1.0:
            raise ValueError(f"CKDAConfig.merge_lambda: expected a value in [0, 1), got {self.merge_lambda}")
        if self.prototype_tau <= 0 or self.prototype_batch_size < 1:
            raise ValueError("CKDAConfig.prototype_tau must be > 0 and prototype_batch_size >= 1")
        if self.inter_only and self.intra_only:
            raise ValueError("CKDAConfig: inter_only and intra_only exclude each other")
        if self.no_msp and self.no_mcp and self.orthogonality:
            raise ValueError("CKDAConfig: orthogonality needs both MSP and MCP")

    # ------------------------------------------------------------------ effective values
    @property
    def effective_alpha(self) -> float:
        """Weight of L_p after ablations."""
        return 0.0 if (self.no_prompt_consistency or self.finetune) else self.alpha

    @property
    def effective_intra_weight(self) -> float:
        """Weight of L_intra after ablations: `intra_weight` or beta (1 - mu); 0 for inter_only / no_cka / finetune."""
        off = self.no_cka or self.finetune or self.inter_only
        if off:
            return 0.0
        return float(self.intra_weight) if self.intra_weight is not None else self.beta * (1.0 - self.mu)

    @property
    def effective_inter_weight(self) -> float:
        """Weight of L_inter after ablations: `inter_weight` or beta mu; 0 for intra_only / no_cka / finetune."""
        off = self.no_cka or self.finetune or self.intra_only
        if off:
            return 0.0
        return float(self.inter_weight) if self.inter_weight is not None else self.beta * self.mu

    @property
    def effective_merge_lambda(self) -> float:
        """Merge weight after ablations (0: no merge)."""
        return 0.0 if (self.no_merge or self.finetune) else self.merge_lambda

    @property
    def effective_affinity_scale(self) -> float:
        """s actually used (10 with `sharp_affinity`)."""
        return 10.0 if self.sharp_affinity else self.affinity_scale

    @property
    def needs_teacher(self) -> bool:
        """Whether any term uses the previous-session teacher."""
        return self.effective_alpha > 0 or self.effective_intra_weight > 0 or self.effective_inter_weight > 0

    # ------------------------------------------------------------------ views for other parts
    def loss_config(self) -> ReIDLossConfig:
        """The base criterion's weights (``no_centre`` sets w_new = 0)."""
        return ReIDLossConfig(margin=self.triplet_margin, w_new=0.0 if self.no_centre else self.w_new,
                              c=self.centre_mix)

    def model_overrides(self) -> dict[str, bool | str]:
        """`ModelConfig` overrides for the model ablations (and ``init`` with `legacy_init`); pass to
        ``create_model(config_overrides=...)``."""
        overrides: dict[str, bool | str] = {
            "use_msp": not self.no_msp,
            "use_mcp": not self.no_mcp,
            "mcp_instance_norm": not self.no_mcp_instance_norm,
            "mcp_gates": not self.no_mcp_gates,
            "use_modality_embedding": not self.no_modality_embedding,
        }
        if self.legacy_init:
            overrides["init"] = "legacy"
        return overrides

    def stream_overrides(self) -> dict[str, Any]:
        """Keyword arguments of ``vi_lreid_benchmark`` for quirks (b) and (c) (empty when both are off)."""
        out: dict[str, Any] = {}
        if self.quirk_llcm_flip_test_modality:
            out["llcm_flip_test_modality"] = True
        if self.quirk_llcm_max_train_label_500:
            out["reader_options"] = {"llcm": {"max_train_label": 500}}
        return out

    def with_flags(self, *flags: str) -> CKDAConfig:
        """A copy with the named boolean fields switched on, e.g. ``CKDA_PAPER.with_flags("no_merge")``."""
        names = {f.name for f in dataclasses.fields(self) if f.type in ("bool", bool)}
        unknown = sorted(set(flags) - names)
        if unknown:
            raise ValueError(f"CKDAConfig.with_flags: unknown flag(s) {unknown}; valid: {sorted(names)}")
        return dataclasses.replace(self, **{flag: True for flag in flags})

    @classmethod
    def paper(cls) -> CKDAConfig:
        """The published configuration."""
        return cls()

    @classmethod
    def ablation(cls, name: str) -> CKDAConfig:
        """The published configuration with one ablation of docs/method.md §8 switched on."""
        if name not in ABLATION_FLAGS:
            raise ValueError(f"CKDAConfig.ablation: unknown ablation {name!r}; valid: {list(ABLATION_FLAGS)}")
        return cls().with_flags(name)


CKDA_PAPER = CKDAConfig()
"""The published CKDA configuration."""

CKDA_ABLATIONS: dict[str, CKDAConfig] = {name: CKDAConfig.ablation(name) for name in ABLATION_FLAGS}
"""One preset per ablation of docs/method.md §8, keyed by flag name."""

QUIRK_FLAGS = ("quirk_regdb_thermal_from_visible", "quirk_llcm_flip_test_modality", "quirk_llcm_max_train_label_500")
"""The three quirks of the published setting (docs/method.md §7: a, b, c), one boolean field each."""

CKDA_VARIANT_ALIASES: dict[str, dict[str, bool]] = {
    "quirks": {flag: True for flag in QUIRK_FLAGS},
    "quirk_a": {QUIRK_FLAGS[0]: True},
    "quirk_b": {QUIRK_FLAGS[1]: True},
    "quirk_c": {QUIRK_FLAGS[2]: True},
}
"""Short names usable inside a method variant (``ckda[quirks]``, ``ckda[quirk_b]``): each stands for these fields."""
