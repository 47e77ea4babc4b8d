"""`DKPPlugin`: Distribution-aware Knowledge Prototyping (Xu, Zhou et al., CVPR 2024) for lifelong VI-ReID.

* End of every session (after the weight fusion): one pass of the (fused) model over the session's training images
  (eval mode, test transforms) gives each identity's **distribution prototype**, the mean and per-dimension standard
  deviation of its L2-normalised features (`losses/dkp.py`). No image is kept.
* Next session, every iteration: one feature is sampled from every old prototype and the batch's relation to these
  samples is distilled into the batch affinity, ``af_weight * KL(A_proto || A_new)``.
* Model fusion at the end of each session from the second on, theta = 0.5 * theta_old + 0.5 * theta_new: that step is
  Avalanche-side `WeightMergePlugin(lam=0.5)`, which the `DKP` strategy puts before this plugin.

Adapted for VI-ReID / this model: (i) DKP's ResNet has an instance-uncertainty branch (a learnt per-sample variance,
sampled features in the ID and "set triplet" losses); our ViT ReID model has none, so the identity variance is the
empirical variance of its features only, and training uses the common `ReIDCriterion`; (ii) option
``per_modality`` keeps separate visible and infrared distributions per identity; (iii) prototypes are computed at
the end of the session in eval mode (DKP computes them at the start of the next one with BN in training mode).
By default only the previous session's prototypes are used (DKP: ``stages = 1``); ``accumulate_sessions`` keeps all.
"""
from __future__ import annotations

from typing import Any, Literal

from avalanche.core import SupervisedPlugin

from ckda_avalanche.losses.dkp import (DistributionPrototypes, identity_distributions,
                                       prototype_affinity_distillation_loss, sample_prototype_features)
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.old_model import extract_features, loader_workers
from ckda_avalanche.plugins.settings import check_choice
from ckda_avalanche.plugins.teacher import check_merged_before

__all__ = ["DKPPlugin", "check_dkp_settings"]


def check_dkp_settings(owner: str, *, af_weight: float, lambda_1: float, lambda_2: float, feature: str) -> None:
    """Raise a ValueError naming ``owner`` (the plugin or its method config) and the field of a bad setting."""
    check_choice(owner, "feature", feature, ("feat", "retrieval"))
    if af_weight < 0:
        raise ValueError(f"{owner}.af_weight: expected >= 0, got {af_weight}")
    if lambda_1 <= 0 or lambda_2 <= 0:
        raise ValueError(f"{owner}: lambda_1 and lambda_2 must be > 0")


class DKPPlugin(SupervisedPlugin):
    """Prototype-based affinity distillation; prototypes built after each session."""

    def __init__(self, *, af_weight: float = 0.1, lambda_1: float = 0.1, lambda_2: float = 0.1,
                 per_modality: bool = False, accumulate_sessions: bool = False,
                 feature: Literal["feat", "retrieval"] = "feat") -> None:
        """The keywords are the fields of the same names of `DKPConfig` (``ckda_avalanche.strategies.dkp``), with
        its defaults; bad values raise a ValueError naming the keyword."""
        super().__init__()
        check_dkp_settings("DKPPlugin", af_weight=af_weight, lambda_1=lambda_1, lambda_2=lambda_2, feature=feature)
        self.af_weight = af_weight
        """Weight of the prototype affinity distillation."""
        self.lambda_1 = lambda_1
        """Temperature of the sample-to-prototype relation."""
        self.lambda_2 = lambda_2
        """Temperature of both batch affinities."""
        self.per_modality = per_modality
        """Separate visible / infrared distributions per identity."""
        self.accumulate_sessions = accumulate_sessions
        """Distil against the prototypes of all past sessions (False: only the previous session's)."""
        self.feature = feature
        """Feature space: ``"feat"`` (L2-normalised pre-BN f) or ``"retrieval"`` (L2norm(BN(f)))."""
        self.sessions: list[DistributionPrototypes] = []
        """Prototypes of each past session (only the last one when not accumulating)."""
        self._active: DistributionPrototypes | None = None
        self.last_term: float = 0.0
        """Value of the distillation term at the latest iteration."""

    @property
    def prototypes(self) -> DistributionPrototypes | None:
        """The prototypes distilled against in the current session (None in the first)."""
        if not self.sessions:
            return None
        return DistributionPrototypes.concat(self.sessions) if self.accumulate_sessions else self.sessions[-1]

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        protos = self.prototypes
        self._active = None if protos is None else DistributionPrototypes(
            labels=protos.labels, modality=protos.modality, mean=protos.mean.to(strategy.device),
            std=protos.std.to(strategy.device))

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if self._active is None or self.af_weight == 0:
            return
        out = strategy.mb_output
        student = out.feat if self.feature == "feat" else out.bn_feat
        samples = sample_prototype_features(self._active)
        term = prototype_affinity_distillation_loss(student, samples, lambda_1=self.lambda_1,
                                                    lambda_2=self.lambda_2)
        self.last_term = float(term.detach())
        strategy.loss += self.af_weight * term
        record_loss_term(strategy, "dkp_affinity", self.af_weight * term)

    def loss_terms(self) -> dict[str, float]:
        """The unweighted term of the last iteration."""
        return {} if self._active is None or self.af_weight == 0 else {"dkp_affinity": self.last_term}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        check_merged_before(strategy, "DKPPlugin")
        feats, labels, modality = extract_features(
            strategy.model, strategy.experience.dataset, batch_size=strategy.eval_mb_size, device=strategy.device,
            kind="feat" if self.feature == "feat" else "retrieval", num_workers=loader_workers(strategy))
        protos = identity_distributions(feats, labels, modality if self.per_modality else None)
        self.sessions = [*self.sessions, protos] if self.accumulate_sessions else [protos]
        self._active = None

    def state_dict(self) -> dict[str, Any]:
        return {"sessions": [vars(p).copy() for p in self.sessions]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "sessions" not in state:
            raise KeyError("DKPPlugin.load_state_dict: missing entry 'sessions'")
        self.sessions = [DistributionPrototypes(**{k: p[k] for k in ("labels", "modality", "mean", "std")})
                         for p in state["sessions"]]

    def memory_report(self) -> dict[str, int]:
        return {"prototypes": sum(p.num_bytes() for p in self.sessions)}
