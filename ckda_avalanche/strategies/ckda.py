"""`CKDA`: the CKDA strategy (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016) assembled from plugins.

L = L_base (criterion) + alpha L_p (`PromptConsistencyPlugin`) + CKA (`CKAPlugin`), with a shared frozen teacher
(`TeacherPlugin`) and the end-of-session weight merge (`WeightMergePlugin`). Plugin order is fixed and matters at
the end of a session: merge -> teacher refresh (copy of the merged model) -> prototypes (computed with the teacher).
Components whose weight is zero after ablations are not created (e.g. no teacher at all for ``finetune``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.optim import Optimizer

from ckda_avalanche.losses.reid_criterion import ReIDCriterion
from ckda_avalanche.plugins.cka import CKAPlugin
from ckda_avalanche.plugins.prompt_consistency import PromptConsistencyPlugin
from ckda_avalanche.plugins.prompt_orthogonality import PromptOrthogonalityPlugin
from ckda_avalanche.plugins.teacher import TeacherPlugin
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin
from ckda_avalanche.strategies.base import ReIDTemplate, silent_evaluator
from ckda_avalanche.strategies.ckda_config import CKDA_PAPER, CKDAConfig
from ckda_avalanche.strategies.config import TrainConfig

__all__ = ["CKDA", "check_model_matches"]


def check_model_matches(model: nn.Module, method: CKDAConfig) -> None:
    """Raise if ``model`` was not built with ``method.model_overrides()`` (only checked when it has a ``config``)."""
    config = getattr(model, "config", None)
    if config is None:
        return
    wrong = {k: (getattr(config, k), v) for k, v in method.model_overrides().items()
             if hasattr(config, k) and getattr(config, k) != v}
    if wrong:
        detail = ", ".join(f"{k}={have} (needs {want})" for k, (have, want) in wrong.items())
        raise ValueError(f"CKDA: the model does not match the CKDAConfig ablations: {detail}; create it with "
                         "create_model(..., config_overrides=method.model_overrides())")


class CKDA(ReIDTemplate):
    """CKDA on a ViT ReID model; the model must be created with ``method.model_overrides()``."""

    def __init__(
        self,
        *,
        model: nn.Module,
        method: CKDAConfig = CKDA_PAPER,
        config: TrainConfig = TrainConfig(),
        optimizer: Optimizer | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = 64,
        device: str | torch.device = "auto",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] | None = silent_evaluator,
        eval_every: int = -1,
    ) -> None:
        if not isinstance(method, CKDAConfig):
            raise TypeError(f"method: expected a CKDAConfig, got {type(method).__name__}")
        check_model_matches(model, method)
        self.method = method
        self.teacher: TeacherPlugin | None = TeacherPlugin() if method.needs_teacher else None
        self.merge: WeightMergePlugin | None = None
        self.prompt_consistency: PromptConsistencyPlugin | None = None
        self.cka: CKAPlugin | None = None
        self.orthogonality: PromptOrthogonalityPlugin | None = None
        own: list[BasePlugin] = []
        if method.effective_merge_lambda > 0:
            self.merge = WeightMergePlugin(lam=method.effective_merge_lambda, teacher=self.teacher)
            own.append(self.merge)
        if self.teacher is not None:
            own.append(self.teacher)
            if method.effective_alpha > 0:
                self.prompt_consistency = PromptConsistencyPlugin(teacher=self.teacher, alpha=method.effective_alpha)
                own.append(self.prompt_consistency)
            if method.effective_intra_weight > 0 or method.effective_inter_weight > 0:
                self.cka = CKAPlugin(
                    teacher=self.teacher,
                    intra_weight=method.effective_intra_weight,
                    inter_weight=method.effective_inter_weight,
                    scale=method.effective_affinity_scale,
                    tau=method.prototype_tau,
                    student_feature="normalized_bn" if method.normalized_student else "feat",
                    accumulate=method.accumulate_prototypes,
                    regdb_thermal_from_visible=method.quirk_regdb_thermal_from_visible,
                    batch_size=method.prototype_batch_size,
                )
                own.append(self.cka)
        if method.orthogonality:
            self.orthogonality = PromptOrthogonalityPlugin(weight=method.orthogonality_weight)
            own.append(self.orthogonality)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=ReIDCriterion(config=method.loss_config()),
            config=config,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*own, *(plugins or [])],
            evaluator=evaluator,
            eval_every=eval_every,
        )
        if self.teacher is not None:
            self.teacher.bind_template(self.model)
