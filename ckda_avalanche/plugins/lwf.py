"""`ReIDLwFPlugin`: Learning without Forgetting (Li & Hoiem, ECCV 2016) for lifelong VI-ReID.

From the second session on, a frozen copy of the model at the end of the previous session sees every training batch
and its outputs are distilled into the current model (`losses/lwf.py`). Two readings of "outputs" (keyword `mode`):

* ``"affinity"`` (default): the old model's batch affinity over retrieval features (softmax of cosine similarities,
  temperature 0.1), ``KL(A_old || A_new)``. ReID is evaluated by retrieval on unseen identities, so the relation
  between samples is what must be preserved; this is the form used by LReID work (e.g. LSTKC without rectification).
* ``"logits"``: the literal LwF term on the old session's identity logits (T = 2). Our model re-creates its classifier
  every session, so the old head is kept frozen inside the old-model copy and the *current* BNNeck feature is passed
  through it; this keeps the old head's view of the new images, but unlike LwF the old head itself is not fine-tuned.

Avalanche's `LwFPlugin` was tried (avalanche-lib 0.6.0, on `FineTune` + `ReIDBatchPlugin`) and breaks in the second
session: it calls ``prev_model(x)`` without the modality (our model raises: `ReIDBatchPlugin` only sets
``batch_modality`` around the strategy's own forward); with the modality supplied by a test shim it fails next with
"tuple indices must be integers" because it slices ``strategy.mb_output`` as a logits tensor (ours is a `ReIDOutput`).
It would also distil only the units of a persistent classifier, while ours is re-created each session. Hence this
plugin, written by composition on `ReIDTemplate`.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ckda_avalanche.losses.lwf import affinity_distillation_loss, logit_distillation_loss
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.old_model import OldModelKeeper
from ckda_avalanche.plugins.settings import check_choice

__all__ = ["ReIDLwFPlugin", "check_lwf_settings"]


def check_lwf_settings(owner: str, *, alpha: float, mode: str, affinity_temperature: float, logit_temperature: float,
                       feature: str) -> None:
    """Raise a ValueError naming ``owner`` (the plugin or its method config) and the field of a bad setting."""
    check_choice(owner, "mode", mode, ("affinity", "logits"))
    check_choice(owner, "feature", feature, ("feat", "bn_feat"))
    if alpha < 0:
        raise ValueError(f"{owner}.alpha: expected >= 0, got {alpha}")
    if affinity_temperature <= 0 or logit_temperature <= 0:
        raise ValueError(f"{owner}: temperatures must be > 0")


class ReIDLwFPlugin(SupervisedPlugin):
    """Adds ``alpha * distillation`` to the loss from the second session on; keeps one old-model copy."""

    def __init__(self, *, alpha: float = 1.0, mode: Literal["affinity", "logits"] = "affinity",
                 affinity_temperature: float = 0.1, logit_temperature: float = 2.0,
                 feature: Literal["feat", "bn_feat"] = "feat") -> None:
        """The keywords are the fields of the same names of `LwFConfig` (``ckda_avalanche.strategies.lwf``), with
        its defaults; bad values raise a ValueError naming the keyword."""
        super().__init__()
        check_lwf_settings("ReIDLwFPlugin", alpha=alpha, mode=mode, affinity_temperature=affinity_temperature,
                           logit_temperature=logit_temperature, feature=feature)
        self.alpha = alpha
        """Weight of the distillation term."""
        self.mode = mode
        """What is distilled: ``"affinity"`` (batch affinity of features) or ``"logits"`` (old identity logits)."""
        self.affinity_temperature = affinity_temperature
        """Softmax temperature of the batch affinity."""
        self.logit_temperature = logit_temperature
        """Knowledge-distillation temperature of the logits mode."""
        self.feature = feature
        """Feature whose affinity is distilled: ``"feat"`` (pre-BN f) or ``"bn_feat"`` (BNNeck output g)."""
        self.old = OldModelKeeper()
        """The previous session's model (frozen), the LwF teacher."""
        self.last_term: float = 0.0
        """Value of the distillation term at the latest iteration (for logging and tests)."""

    def bind_template(self, model: nn.Module) -> None:
        """The strategy's model: the old model is saved as "same as the model" while it equals it."""
        self.old.bind_template(model)

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.old.ensure(strategy.model)

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        old = self.old.model
        if old is None or self.alpha == 0:
            return
        out = strategy.mb_output
        x, modality = strategy.mb_x, strategy.mbatch[3]
        with torch.no_grad():
            old_feat, _ = old.forward_features(x, modality)
            old_bn, old_logits = old.forward_head(old_feat)
        if self.mode == "affinity":
            student = out.feat if self.feature == "feat" else out.bn_feat
            teacher = old_feat if self.feature == "feat" else old_bn
            term = affinity_distillation_loss(student, teacher, temperature=self.affinity_temperature)
        else:
            head = getattr(getattr(old, "head", None), "classifier", None)
            if head is None or old_logits is None:
                raise RuntimeError("ReIDLwFPlugin(mode='logits'): the previous session's model has no classifier")
            term = logit_distillation_loss(head(out.bn_feat), old_logits,
                                           temperature=self.logit_temperature)
        self.last_term = float(term.detach())
        strategy.loss += self.alpha * term
        record_loss_term(strategy, "lwf_distillation", self.alpha * term)

    def loss_terms(self) -> dict[str, float]:
        """The unweighted term of the last iteration."""
        return {} if self.old.model is None or self.alpha == 0 else {"lwf_distillation": self.last_term}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.old.snapshot(strategy.model)

    def state_dict(self) -> dict[str, Any]:
        return {"old_model": self.old.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "old_model" not in state:
            raise KeyError("ReIDLwFPlugin.load_state_dict: missing entry 'old_model'")
        self.old.load_state_dict(state["old_model"])

    def memory_report(self) -> dict[str, int]:
        return {"parameters": self.old.num_bytes()}
