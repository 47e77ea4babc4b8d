"""`TeacherPlugin`: the one frozen teacher of CKDA, shared by prompt consistency and CKA.

CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016; docs/method.md §4.4 and §5.3): from the second session on, the merged
model of the previous session, frozen and in eval mode, gives for every training batch its retrieval feature
f~ = L2norm(BN_old(f_old)) and its prompt image P~.

Design: a single plugin owns the teacher (one copy of the model, saved once in checkpoints); `PromptConsistencyPlugin`
and `CKAPlugin` hold a reference to it and ask it for `outputs(strategy)`, computed once per training iteration and
cached. The teacher is refreshed in ``after_training_exp``, so it must come AFTER every `WeightMergePlugin` in the
plugin list (it checks this) and BEFORE the plugins that use it (they check this).
"""
from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import nn

from ckda_avalanche.plugins.checks import check_plugin_order
from ckda_avalanche.plugins.roles import TeacherRole, WeightMergeRole
from ckda_avalanche.plugins.same_weights import same_weights

__all__ = ["TeacherOutputs", "TeacherPlugin", "check_merged_before"]


class TeacherOutputs(NamedTuple):
    """What the frozen teacher gives for one batch."""

    feature: torch.Tensor
    """f~ = L2norm(BN_old(f_old)), (B, D)."""
    prompt: torch.Tensor | None
    """P~, the teacher's prompt image (None when the model has no prompts)."""


def check_merged_before(strategy: Any, who: str) -> None:
    """Raise unless every `WeightMergePlugin` of ``strategy`` has already merged this session."""
    for plugin in strategy.plugins:
        if isinstance(plugin, WeightMergeRole) and plugin.pending:
            raise RuntimeError(
                f"{who} ran before WeightMergePlugin at the end of the session: put WeightMergePlugin before {who} in "
                "the plugin list, since the teacher and the prototypes must be built from the MERGED model"
            )


class TeacherPlugin(TeacherRole, SupervisedPlugin):
    """Keeps a frozen deep copy of the (merged) model taken at the end of each training session."""

    def __init__(self) -> None:
        super().__init__()
        self.model: nn.Module | None = None
        """The frozen teacher (eval mode, no gradients, no classifier), or None before the first session ends."""
        self.refreshed: bool = True
        """False between ``before_training_exp`` and this plugin's ``after_training_exp``."""
        self._cache_key: int | None = None
        self._cache: TeacherOutputs | None = None

    @property
    def active(self) -> bool:
        """Whether a teacher exists (i.e. from the second session on)."""
        return self.model is not None

    def refresh(self, model: nn.Module) -> None:
        """Replace the teacher by a frozen copy of ``model`` (classifier removed, eval mode, requires_grad False)."""
        teacher = copy.deepcopy(model)
        if hasattr(teacher, "batch_modality"):
            teacher.batch_modality = None
        if hasattr(teacher, "reset_classifier"):
            teacher.reset_classifier(0)
        teacher.eval()
        teacher.requires_grad_(False)
        self.model = teacher
        self._cache_key, self._cache = None, None

    @torch.no_grad()
    def compute(self, x: torch.Tensor, modality: torch.Tensor) -> TeacherOutputs:
        """Teacher outputs for a batch (no caching)."""
        if self.model is None:
            raise RuntimeError("TeacherPlugin.compute: no teacher yet (it is created at the end of the first session)")
        self.model.eval()
        feat, prompt = self.model.forward_features(x, modality)
        bn_feat, _ = self.model.forward_head(feat)
        return TeacherOutputs(F.normalize(bn_feat.float(), dim=1), prompt)

    def outputs(self, strategy: Any) -> TeacherOutputs:
        """Teacher outputs for ``strategy``'s current training minibatch, computed once per iteration."""
        key = int(strategy.clock.train_iterations)
        if self._cache_key != key or self._cache is None:
            self._cache = self.compute(strategy.mb_x, strategy.mbatch[3])
            self._cache_key = key
        return self._cache

    # ------------------------------------------------------------------ hooks
    def before_training(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        check_plugin_order(strategy.plugins)  # before any training, not at the end of session 1

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.refreshed = False

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        check_merged_before(strategy, "TeacherPlugin")
        self.refresh(strategy.model)
        self.refreshed = True

    def after_training(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._cache_key, self._cache = None, None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """``{"model": weights}``; ``{"model": None, "same_as_model": True}`` when the teacher equals the bound model
        (every teacher tensor equal to the model's: right after a session, when runner checkpoints are written), so a
        checkpoint does not hold the same weights twice; None alone: no teacher yet."""
        if self.model is None:
            return {"model": None}
        template = getattr(self, "_template", None)
        if template is not None and same_weights(self.model.state_dict(), template, all_names=False):
            return {"model": None, "same_as_model": True}
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any], *, template: nn.Module | None = None) -> None:
        """Restore the teacher; its architecture is copied from ``template`` (default: the model passed by
        `bind_template`, which `ReIDTemplate`-based strategies set to the strategy's model)."""
        if "model" not in state:
            raise KeyError("TeacherPlugin.load_state_dict: missing entry 'model'")
        same = bool(state.get("same_as_model"))
        if state["model"] is None and not same:
            self.model = None
            return
        template = template if template is not None else getattr(self, "_template", None)
        if template is None:
            raise RuntimeError("TeacherPlugin.load_state_dict: no template model; call bind_template(model) first")
        self.refresh(template)  # a copy of the (already restored) model: all a "same_as_model" teacher needs
        if not same:
            self.model.load_state_dict(state["model"])

    def bind_template(self, model: nn.Module) -> None:
        """Remember the model whose architecture a restored teacher copies."""
        self._template = model

    def memory_report(self) -> dict[str, int]:
        if self.model is None:
            return {"teacher": 0}
        return {"teacher": sum(t.numel() * t.element_size() for t in self.model.state_dict().values())}
