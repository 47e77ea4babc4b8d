"""`CKAPlugin`: CKDA's cross-modal knowledge alignment with dual-modality prototypes.

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4.4 and §5.2). From the second session on, for each
modality group of the batch, the student's and the teacher's prototype-affinity matrices are aligned with
KL(A~ || A) (maths in `ckda_avalanche.losses.affinity`): loss += intra_weight * L_intra + inter_weight * L_inter
(published: beta (1-mu) = beta mu = 0.5). At the end of every session the prototypes are recomputed with the
shared teacher, i.e. the MERGED model, over the session's whole training set with the test transform.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.affinity import cka_loss, cka_terms
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.old_model import loader_workers
from ckda_avalanche.plugins.prompt_consistency import require_teacher
from ckda_avalanche.plugins.prototypes import DualPrototypes, compute_dual_prototypes
from ckda_avalanche.plugins.teacher import TeacherPlugin

__all__ = ["CKAPlugin", "STUDENT_FEATURES"]

STUDENT_FEATURES = ("feat", "normalized_bn")
"""Student feature options: pre-BN f (published) or L2norm(BN(f)) (same space as teacher and prototypes)."""


class CKAPlugin(SupervisedPlugin):
    """Adds the CKA loss in ``before_backward`` and refreshes the prototypes in ``after_training_exp``."""

    def __init__(
        self,
        *,
        teacher: TeacherPlugin,
        intra_weight: float = 0.5,
        inter_weight: float = 0.5,
        scale: float = 0.1,
        tau: float = 0.1,
        student_feature: str = "feat",
        accumulate: bool = False,
        regdb_thermal_from_visible: bool = False,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        if intra_weight < 0 or inter_weight < 0:
            raise ValueError(f"CKAPlugin: weights must be >= 0, got intra {intra_weight}, inter {inter_weight}")
        if tau <= 0:
            raise ValueError(f"CKAPlugin.tau: expected > 0, got {tau}")
        if student_feature not in STUDENT_FEATURES:
            raise ValueError(f"CKAPlugin.student_feature: expected one of {STUDENT_FEATURES}, got {student_feature!r}")
        self.teacher = teacher
        """The shared frozen teacher (the merged model of the previous session)."""
        self.intra_weight = intra_weight
        """Weight of L_intra (published beta * (1 - mu) = 0.5)."""
        self.inter_weight = inter_weight
        """Weight of L_inter (published beta * mu = 0.5)."""
        self.scale = scale
        """s in A_ab = softmax_b(s * cos(r_a, r_b)); published 0.1, option 10."""
        self.tau = tau
        """Temperature of r(u, Q) = softmax_k(cos(u, q_k) / tau)."""
        self.student_feature = student_feature
        """"feat" (pre-BN f, published) or "normalized_bn" (L2norm(BN(f)))."""
        self.accumulate = accumulate
        """Use the prototypes of all past sessions instead of only the previous one."""
        self.regdb_thermal_from_visible = regdb_thermal_from_visible
        """Quirk (a) of the published setting: RegDB "thermal" prototypes computed from visible images."""
        self.batch_size = batch_size
        """Batch size of the prototype pass."""
        self.history: list[DualPrototypes] = []
        """Prototypes kept between sessions (only the last one unless ``accumulate``)."""
        self.last_terms: tuple[torch.Tensor, torch.Tensor] | None = None
        """(L_intra, L_inter) of the last training iteration (detached), None when not computed."""

    @property
    def prototypes(self) -> DualPrototypes | None:
        """The prototypes the current session aligns with."""
        if not self.history:
            return None
        return self.history[-1] if not self.accumulate else DualPrototypes.concatenate(self.history)

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        require_teacher(strategy, self.teacher, type(self).__name__)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.last_terms = None
        protos = self.prototypes
        if protos is None or not self.teacher.active or (self.intra_weight == 0 and self.inter_weight == 0):
            return
        output = strategy.mb_output
        if self.student_feature == "feat":
            student = output.feat
        else:
            student = F.normalize(output.bn_feat.float(), dim=1)
        teacher = self.teacher.outputs(strategy).feature
        device = student.device
        terms = cka_terms(student, teacher, output.modality, protos.visible.to(device), protos.infrared.to(device),
                          scale=self.scale, tau=self.tau)
        self.last_terms = (terms.intra.detach(), terms.inter.detach())
        strategy.loss = strategy.loss + cka_loss(terms, intra_weight=self.intra_weight,
                                                 inter_weight=self.inter_weight)
        record_loss_term(strategy, "cka_intra", self.intra_weight * terms.intra)
        record_loss_term(strategy, "cka_inter", self.inter_weight * terms.inter)

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Unweighted L_intra and L_inter of the last iteration (empty when CKA was not computed)."""
        return {} if self.last_terms is None else {"cka_intra": self.last_terms[0], "cka_inter": self.last_terms[1]}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if not self.teacher.refreshed or self.teacher.model is None:
            raise RuntimeError("CKAPlugin ran before its TeacherPlugin at the end of the session: the prototypes must "
                               "be computed with the merged teacher; put TeacherPlugin before CKAPlugin")
        info = getattr(strategy.experience, "reid", None)
        dataset_name = getattr(info, "dataset", None)
        autocast = getattr(strategy, "autocast", contextlib.nullcontext)
        protos = compute_dual_prototypes(
            self.teacher.model,
            strategy.experience.dataset.eval(),
            batch_size=self.batch_size,
            device=strategy.device,
            autocast=autocast,
            num_workers=loader_workers(strategy),
            visible_as_infrared=self.regdb_thermal_from_visible and dataset_name == "regdb",
        )
        self.history = [*self.history, protos] if self.accumulate else [protos]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"history": [{k: v.cpu() for k, v in p._asdict().items()} for p in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "history" not in state:
            raise KeyError("CKAPlugin.load_state_dict: missing entry 'history'")
        self.history = [DualPrototypes(**item) for item in state["history"]]

    def memory_report(self) -> dict[str, int]:
        return {"prototypes": sum(t.numel() * t.element_size() for p in self.history for t in p)}
