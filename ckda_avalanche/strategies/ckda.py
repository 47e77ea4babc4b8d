"""`CKDA`: the CKDA strategy (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016) assembled from plugins.

L = L_base (criterion) + alpha L_p (`PromptConsistencyPlugin`) + CKA (`CKAPlugin`), with a shared frozen teacher
(`TeacherPlugin`) and the end-of-session weight merge (`WeightMergePlugin`). Plugin order is fixed and matters at
the end of a session: merge -> teacher refresh (copy of the merged model) -> prototypes (computed with the teacher).
Components whose weight is zero after ablations are not created (e.g. no teacher at all for ``finetune``).
"""
from __future__ import annotations

from typing import Any

from avalanche.core import BasePlugin
from torch import nn

from ckda_avalanche.losses.reid_criterion import ReIDCriterion
from ckda_avalanche.models.backbone_choice import check_model_overrides
from ckda_avalanche.plugins.cka import CKAPlugin
from ckda_avalanche.plugins.prompt_consistency import PromptConsistencyPlugin
from ckda_avalanche.plugins.prompt_orthogonality import PromptOrthogonalityPlugin
from ckda_avalanche.plugins.teacher import TeacherPlugin
from ckda_avalanche.plugins.weight_merge import WeightMergePlugin
from ckda_avalanche.strategies.ckda_config import CKDA_PAPER, CKDAConfig
from ckda_avalanche.strategies.method_strategy import MethodStrategy

__all__ = ["CKDA"]


class CKDA(MethodStrategy[CKDAConfig]):
    """CKDA on a ViT ReID model; the model must be created with ``method.model_overrides()``.

    Keywords: those of `MethodStrategy` (``method: CKDAConfig = CKDA_PAPER``); the teacher is bound to the placed
    model at construction."""

    default_method = CKDA_PAPER

    def prepare_model(self, model: nn.Module, method: CKDAConfig) -> nn.Module:
        """The model as given, after checking it was built with ``method.model_overrides()``."""
        check_model_overrides(model, method.model_overrides(), owner="CKDA")
        return model

    def make_method_plugins(self, method: CKDAConfig) -> list[BasePlugin]:
        """merge -> teacher -> prompt consistency -> CKA -> orthogonality, each only when its weight is non-zero."""
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
        return own

    def check_stream_quirks(self, experience: Any) -> None:
        """Raise unless ``experience`` was built with the data quirks (b) and (c) that ``self.method`` asks for.

        Those quirks live in the stream (``vi_lreid_benchmark(..., **method.stream_overrides())``), so a stream built
        without them would silently train and score the unquirked setting, and the other way round."""
        info = self.session_info(experience)
        if info.dataset != "llcm":
            return
        if info.split == "test":
            wanted, found, what = self.method.quirk_llcm_flip_test_modality, info.modality_flipped, \
                "quirk_llcm_flip_test_modality (LLCM test modality flipped)"
        else:
            wanted, found, what = self.method.quirk_llcm_max_train_label_500, info.max_train_label == 500, \
                "quirk_llcm_max_train_label_500 (LLCM training labels < 500)"
        if wanted != found:
            raise ValueError(
                f"CKDA: CKDAConfig.{what.split(' ')[0]} is {wanted} but the LLCM {info.split} experience was built "
                f"{'without' if wanted else 'with'} it {what[what.index('('):]}; build the stream with "
                "vi_lreid_benchmark(..., **method.stream_overrides())")

    def _before_training_exp(self, **kwargs: Any) -> None:
        self.check_stream_quirks(self.experience)
        super()._before_training_exp(**kwargs)

    def _before_eval_exp(self, **kwargs: Any) -> None:
        self.check_stream_quirks(self.experience)
        super()._before_eval_exp(**kwargs)

    def make_criterion(self, method: CKDAConfig) -> ReIDCriterion:
        """`ReIDCriterion` with the method's loss weights (``method.loss_config()``)."""
        return ReIDCriterion(config=method.loss_config())
