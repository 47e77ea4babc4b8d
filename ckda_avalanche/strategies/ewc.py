"""`EWC` and its config `EWCConfig`: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) on ReID batches;
see `plugins/ewc.py` for why Avalanche's `EWCPlugin` could not be used as is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import BasePlugin

from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.plugins.ewc import ReIDEWCPlugin, check_ewc_settings
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["EWC", "EWCConfig"]


@dataclass(frozen=True)
class EWCConfig(BackboneChoice):
    """Hyperparameters of EWC for ReID."""

    ewc_lambda: float = 1000.0
    """Penalty weight lambda (not given by the EWC paper for ReID; chosen so the penalty is of the loss's order)."""
    mode: Literal["separate", "online"] = "separate"
    """One penalty per past session (Kirkpatrick et al.) or one running penalty (online EWC)."""
    decay_factor: float = 1.0
    """Online mode: F <- decay_factor * F_old + F_new."""
    fisher_max_batches: int = 0
    """Batches of the Fisher pass (0: one full epoch of the session's identity-balanced loader)."""
    exclude: tuple[str, ...] = ("head.classifier",)
    """Parameter-name prefixes never penalised (the per-session classifier)."""

    def __post_init__(self) -> None:
        check_ewc_settings("EWCConfig", ewc_lambda=self.ewc_lambda, mode=self.mode, decay_factor=self.decay_factor,
                           fisher_max_batches=self.fisher_max_batches)


class EWC(MethodStrategy[EWCConfig]):
    """`ReIDTemplate` + `ReIDEWCPlugin`; same backbone, sampler, optimiser, base criterion as every other method
    (the plain ViT ReID model unless the config's ``pixel_prompts``).

    Keywords: those of `MethodStrategy` (``method: EWCConfig = EWCConfig()``)."""

    default_method = EWCConfig()

    def make_method_plugins(self, method: EWCConfig) -> list[BasePlugin]:
        self.ewc = ReIDEWCPlugin(ewc_lambda=method.ewc_lambda, mode=method.mode, decay_factor=method.decay_factor,
                                 fisher_max_batches=method.fisher_max_batches, exclude=method.exclude)
        return [self.ewc]
