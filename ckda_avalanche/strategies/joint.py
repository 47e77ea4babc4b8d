"""`Joint`: the reference point of lifelong ReID, trained at every session on the union of all sessions seen so far,
with one classifier over the union's identities (labels are already disjoint across sessions) and the same sampler,
optimiser, criterion and epochs as every other method.

By default it continues from the previous session's weights (cumulative training, Avalanche's ``Cumulative``) and
is the **upper bound on its own definition**: each epoch is one pass over the whole union (``JointConfig.full_epochs``),
so session k costs about k sessions of fine-tuning, whatever `TrainConfig.equal_iterations` says; the leaderboard
labels it "(upper bound)". ``joint[full_epochs=false]`` holds it to the shared budget instead
(with ``equal_iterations`` it then costs what fine-tuning costs and differs from it only in the data it sees).
``JointConfig(reinitialise=True)`` (``joint[reinitialise]`` on the command line) restarts every session from the
initial weights (the classic joint upper bound); with the shared budget that spreads one session's steps over the
whole union.

Memory: it keeps only dataset references (and, when re-initialising, a copy of the initial weights), so it reports
0 bytes of exemplar images, **but it re-reads all past training data every session** - it is not a lifelong
method, only a reference point.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from avalanche.benchmarks.utils import concat_datasets
from avalanche.core import BasePlugin
from torch import nn

from ckda_avalanche.models.backbone_choice import BackboneChoice
from ckda_avalanche.strategies.base import tensor_bytes
from ckda_avalanche.strategies.method_strategy import MethodStrategy
from ckda_avalanche.strategies.replay import seen_label_range

__all__ = ["Joint", "JointConfig"]

_CLASSIFIER = ("head.classifier.", "base.head.classifier.")


@dataclass(frozen=True)
class JointConfig(BackboneChoice):
    """Joint's settings: the model choice of `BackboneChoice` (the plain ViT ReID model by default) and where each
    session starts."""

    reinitialise: bool = False
    """Restart every session from the weights the model had at construction (classifier excluded) instead of
    continuing from the previous session's."""
    full_epochs: bool = True
    """Each epoch is one pass over the whole union (the upper bound's own budget, more steps every session); False:
    the budget every method shares (`TrainConfig.equal_iterations`)."""


class Joint(MethodStrategy[JointConfig]):
    """Train on the union of the sessions seen so far, from the previous weights or (``JointConfig.reinitialise``)
    from the initial ones.

    Keywords: those of `MethodStrategy` (``method: JointConfig = JointConfig()``)."""

    default_method = JointConfig()

    upper_bound = True
    """Joint is the reference upper bound, not a lifelong method (the leaderboard labels it)."""

    def epoch_over_whole_training_set(self) -> bool:
        """The whole union with ``full_epochs`` (the default), else the shared budget."""
        return self.method.full_epochs or super().epoch_over_whole_training_set()

    initial_state: dict[str, torch.Tensor]
    """The model's weights at construction (classifier excluded) when re-initialising; empty otherwise."""

    def prepare_model(self, model: nn.Module, method: JointConfig) -> nn.Module:
        """The model checked by `MethodStrategy`; its weights kept as `initial_state` when ``method.reinitialise``."""
        model = super().prepare_model(model, method)
        self.initial_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                              if not k.startswith(_CLASSIFIER)} if method.reinitialise else {}
        return model

    def make_method_plugins(self, method: JointConfig) -> list[BasePlugin]:
        """None: Joint differs from fine-tuning only in its training data."""
        return []

    def train_dataset_adaptation(self, **kwargs: Any) -> None:
        """The training data is the union of the training sets of every experience up to the current one."""
        stream = self.experience.origin_stream
        current = int(self.experience.current_experience)
        self.adapted_dataset = concat_datasets([stream[i].dataset for i in range(current + 1)]).train()

    def classifier_labels(self) -> tuple[int, int]:
        """One classifier over the union's identities."""
        return seen_label_range(self)

    def model_adaptation(self, model: nn.Module | None = None) -> nn.Module:
        """In training: the initial weights back if re-initialising (the classifier comes from `classifier_labels`)."""
        model = super().model_adaptation(model)
        if self.is_training and self.method.reinitialise:
            result = model.load_state_dict(self.initial_state, strict=False)
            if result.unexpected_keys or any(not k.startswith(_CLASSIFIER) for k in result.missing_keys):
                raise RuntimeError(f"Joint: the initial weights do not fit the model (missing "
                                   f"{result.missing_keys}, unexpected {result.unexpected_keys})")
            model.to(self.device)
        return model

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["joint_initial_state"] = self.initial_state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "joint_initial_state" not in state:
            raise KeyError("Joint.load_state_dict: missing entry 'joint_initial_state'")
        rest = {k: v for k, v in state.items() if k != "joint_initial_state"}
        super().load_state_dict(rest)
        self.initial_state = dict(state["joint_initial_state"])

    def memory_report(self) -> dict[str, int]:
        report = super().memory_report()
        report["Joint/initial_weights"] = tensor_bytes(self.initial_state)
        report["Joint/exemplar_images"] = 0
        return report
