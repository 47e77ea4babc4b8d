"""`ReIDEWCPlugin`: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) on ReID minibatches.

At the end of each session the diagonal empirical Fisher of the session's identity criterion (`ReIDCriterion` on
session-local labels: identity CE + triplet + centre terms) is estimated over the session's own identity-balanced
batches; in later sessions ``lambda * sum_s sum_i F_s,i (theta_i - theta*_s,i)^2`` is added to the loss
(`losses/ewc.py`). ``mode="separate"`` keeps one (anchor, Fisher) pair per past session (Kirkpatrick et al.);
``"online"`` keeps one pair, ``F <- decay * F + F_new`` with the latest weights as anchor (Schwarz et al. 2018).
The per-session classifier is excluded (it is re-created every session).

Avalanche's `EWCPlugin` was tried on ReID batches (avalanche-lib 0.6.0, on `FineTune`) and breaks at the end of the
first session: its importance pass calls ``avalanche_forward(model, x, t)``, i.e. ``model(x)`` without the modality,
and `ReIDBatchPlugin` is not called inside that pass, so our model raises ("ViTReID needs the modality of every
sample"). With the modality supplied by a test shim it fails next with "element 0 of tensors does not require grad":
the pass puts the model in eval mode, where it returns retrieval features and `ReIDCriterion` returns a zero loss
with no graph. Reading its code, it would then also feed the raw offset pids to the criterion (out of range for the
session classifier), read a sequential loader (batch-hard triplets without positives) and ``expand`` the old
classifier's importance to the new classifier's width. Hence this re-implementation by composition, reusing the
strategy's identity-balanced dataloader, criterion and label offset.
During the Fisher pass the model is in training mode (so it returns a `ReIDOutput`) but its BatchNorm and dropout
layers are in eval mode, so the pass neither updates running statistics nor samples dropout masks.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ckda_avalanche.losses.ewc import FisherAccumulator, ewc_penalty
from ckda_avalanche.plugins.grad_share import record_loss_term
from ckda_avalanche.plugins.same_weights import same_weights
from ckda_avalanche.plugins.settings import check_choice

__all__ = ["ReIDEWCPlugin", "check_ewc_settings"]


def check_ewc_settings(owner: str, *, ewc_lambda: float, mode: str, decay_factor: float,
                       fisher_max_batches: int) -> None:
    """Raise a ValueError naming ``owner`` (the plugin or its method config) and the field of a bad setting."""
    check_choice(owner, "mode", mode, ("separate", "online"))
    if ewc_lambda < 0 or decay_factor < 0 or fisher_max_batches < 0:
        raise ValueError(f"{owner}: ewc_lambda, decay_factor and fisher_max_batches must be >= 0")


def _stat_free_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._NormBase, nn.Dropout))
            or type(m).__name__ == "DropPath"]


class ReIDEWCPlugin(SupervisedPlugin):
    """EWC penalty from the second session on; Fisher and anchors computed after each session."""

    def __init__(self, *, ewc_lambda: float = 1000.0, mode: Literal["separate", "online"] = "separate",
                 decay_factor: float = 1.0, fisher_max_batches: int = 0,
                 exclude: Sequence[str] = ("head.classifier",)) -> None:
        """The keywords are the fields of the same names of `EWCConfig` (``ckda_avalanche.strategies.ewc``), with
        its defaults; bad values raise a ValueError naming the keyword."""
        super().__init__()
        check_ewc_settings("ReIDEWCPlugin", ewc_lambda=ewc_lambda, mode=mode, decay_factor=decay_factor,
                           fisher_max_batches=fisher_max_batches)
        self.ewc_lambda = ewc_lambda
        """Penalty weight lambda."""
        self.mode = mode
        """``"separate"``: one (anchor, Fisher) pair per past session; ``"online"``: one running pair."""
        self.decay_factor = decay_factor
        """Online mode: F <- decay_factor * F_old + F_new."""
        self.fisher_max_batches = fisher_max_batches
        """Batches of the Fisher pass (0: one full epoch of the session's loader)."""
        if isinstance(exclude, str):
            raise TypeError(f"ReIDEWCPlugin.exclude: expected a sequence of parameter-name prefixes, got {exclude!r}")
        self.exclude: tuple[str, ...] = tuple(exclude)
        """Parameter-name prefixes never penalised."""
        self.anchors: list[dict[str, torch.Tensor]] = []
        """Weights at the end of each past session (one entry in online mode)."""
        self.fishers: list[dict[str, torch.Tensor]] = []
        """Diagonal Fisher of each past session (one entry in online mode)."""

    def _excluded(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.exclude)

    def _named_params(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad and not self._excluded(n)]

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        device = strategy.device
        self.anchors = [{n: t.to(device) for n, t in d.items()} for d in self.anchors]
        self.fishers = [{n: t.to(device) for n, t in d.items()} for d in self.fishers]

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if not self.anchors or self.ewc_lambda == 0:
            return
        params = self._named_params(strategy.model)
        penalty = sum(ewc_penalty(params, a, f).to(strategy.loss.device) for a, f in zip(self.anchors, self.fishers))
        strategy.loss += self.ewc_lambda * penalty
        record_loss_term(strategy, "ewc_penalty", self.ewc_lambda * penalty)

    def compute_fisher(self, strategy: Any) -> dict[str, torch.Tensor]:
        """Diagonal empirical Fisher of the strategy's criterion over its current training dataloader."""
        model = strategy.model
        params = self._named_params(model)
        acc = FisherAccumulator(named_parameters=params)
        flags = [(m, m.training) for m in model.modules()]
        model.train()
        for m in _stat_free_modules(model):
            m.eval()
        limit = self.fisher_max_batches or None
        try:
            for batch in itertools.islice(strategy.dataloader, limit):
                x = batch[0].to(strategy.device)
                pid = batch[1].to(strategy.device)
                modality = batch[3].to(strategy.device)
                model.zero_grad(set_to_none=True)
                out = model(x, modality)
                loss = strategy._criterion(out, pid - strategy.label_offset)
                loss.backward()
                acc.add()
        finally:
            model.zero_grad(set_to_none=True)
            for m, flag in flags:
                m.training = flag
        return {n: f.detach() for n, f in acc.result().items()}

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        fisher = self.compute_fisher(strategy)
        anchor = {n: p.detach().clone() for n, p in self._named_params(strategy.model)}
        if self.mode == "separate" or not self.fishers:
            self.anchors.append(anchor)
            self.fishers.append(fisher)
            return
        old = self.fishers[0]
        merged = {}
        for name, value in fisher.items():
            prev = old.get(name)
            fresh = prev is None or prev.shape != value.shape
            merged[name] = value if fresh else self.decay_factor * prev + value
        self.anchors[0], self.fishers[0] = anchor, merged

    def bind_template(self, model: nn.Module) -> None:
        """The strategy's model: the latest anchor is saved as "same as the model" while it equals its weights."""
        self._template = model

    def _latest_anchor_is_model(self) -> bool:
        template = getattr(self, "_template", None)
        if template is None or not self.anchors:
            return False
        return same_weights(self.anchors[-1], template, all_names=False)

    def state_dict(self) -> dict[str, Any]:
        """Anchors and Fishers (CPU tensors). The latest anchor is the model's weights at the end of the last session,
        i.e. the model itself when runner checkpoints are written: it is then saved as its parameter names only
        (``latest_anchor_names``, with None in its place in ``anchors``) and restored from the restored model.
        The Fishers and the earlier anchors are not the model's weights and are kept."""
        def cpu(ds: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
            return [{n: t.cpu() for n, t in d.items()} for d in ds]

        if self._latest_anchor_is_model():
            return {"anchors": [*cpu(self.anchors[:-1]), None], "fishers": cpu(self.fishers),
                    "latest_anchor_names": list(self.anchors[-1])}
        return {"anchors": cpu(self.anchors), "fishers": cpu(self.fishers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("anchors", "fishers"):
            if key not in state:
                raise KeyError(f"ReIDEWCPlugin.load_state_dict: missing entry {key!r}")
        if len(state["anchors"]) != len(state["fishers"]):
            raise ValueError("ReIDEWCPlugin.load_state_dict: 'anchors' and 'fishers' have different lengths")
        anchors = list(state["anchors"])
        names = state.get("latest_anchor_names")
        if names is not None:
            template = getattr(self, "_template", None)
            if template is None or not anchors or anchors[-1] is not None:
                raise RuntimeError("ReIDEWCPlugin.load_state_dict: the latest anchor is saved as the model's weights, "
                                   "but no model is bound (bind_template) or 'anchors' does not end with None")
            weights = template.state_dict()
            missing = [n for n in names if n not in weights]
            if missing:
                raise KeyError(f"ReIDEWCPlugin.load_state_dict: the model has no parameter(s) {missing[:3]} of the "
                               "saved latest anchor")
            anchors[-1] = {n: weights[n].detach().clone() for n in names}
        self.anchors = [dict(a) for a in anchors]
        self.fishers = [dict(f) for f in state["fishers"]]

    def memory_report(self) -> dict[str, int]:
        def size(ds: list[dict[str, torch.Tensor]]) -> int:
            return sum(t.numel() * t.element_size() for d in ds for t in d.values())

        return {"parameters": size(self.anchors), "importances": size(self.fishers)}
