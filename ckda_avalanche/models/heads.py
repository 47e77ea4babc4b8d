"""BNNeck head with a bias-free, per-session identity classifier.

BNNeck comes from "Bag of Tricks and A Strong Baseline for Deep Person Re-identification" (Luo et al., CVPRW 2019)
and is the CKDA head (§2 of the method spec): g = BatchNorm1d(f) with the BN bias frozen at 0, identity logits =
W g without bias, over the current session's identities only (the classifier is re-created every session).
"""
from __future__ import annotations

import torch
from torch import nn

from .init import init_linear_


class BNNeckHead(nn.Module):
    """f (B, D) -> (g, logits); `classifier` is None until `reset_classifier(n > 0)` is called."""

    def __init__(self, *, embed_dim: int, num_classes: int = 0, classifier_std: float | None = None) -> None:
        """``classifier_std``: None for the published truncated normal (std 0.02, `init.init_linear_`), a number
        for a plain normal with that std (the ReID code bases' 0.001; ``ModelConfig.init="legacy"``)."""
        super().__init__()
        self.embed_dim = embed_dim
        self.classifier_std = classifier_std
        self.bnneck = nn.BatchNorm1d(embed_dim)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        # The bias is frozen (not left out of the optimiser): Avalanche re-adds every parameter each experience.
        self.bnneck.bias.requires_grad_(False)
        self.classifier: nn.Linear | None = None
        self.reset_classifier(num_classes)

    @property
    def num_classes(self) -> int:
        """Number of identities of the current classifier (0 when there is none)."""
        return 0 if self.classifier is None else self.classifier.out_features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh bias-free Linear(D -> num_classes) (0 removes it).

        The new layer is created on the device and with the dtype of the BNNeck, i.e. of the model.
        Weights: the published truncated normal with std 0.02 (`init.init_linear_`), or normal(0, classifier_std)
        when the head was given one.
        """
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0, got {num_classes!r}")
        if num_classes == 0:
            self.classifier = None
            return
        weight = self.bnneck.weight
        classifier = nn.Linear(self.embed_dim, num_classes, bias=False, device=weight.device, dtype=weight.dtype)
        if self.classifier_std is None:
            init_linear_(classifier)
        else:
            nn.init.normal_(classifier.weight, std=self.classifier_std)
        self.classifier = classifier

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """f (B, D) -> (g (B, D), logits (B, num_classes) or None)."""
        bn_feat = self.bnneck(feat)
        logits = self.classifier(bn_feat) if self.classifier is not None else None
        return bn_feat, logits
