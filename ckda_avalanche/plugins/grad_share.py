"""`GradShareProbe`: which loss term moves the shared backbone - the share of the backbone gradient each weighted
loss term contributes, at three points of every session.

A small loss can have a large gradient and a loss with a floor (e.g. CKA's KL at identical weights) can have none, so
the loss magnitudes of `LossTermsPlugin` cannot say whether a term moves the model. This probe can.

At the training iterations 1, N/2 + 1 and N of a session (N = its optimiser steps; names ``start``, ``mid``,
``end``), after every loss-adding plugin has run (``before_backward``; the probe comes after the method's plugins),
it takes each weighted term t that the criterion and the plugins added to the loss (``identity``, ``triplet``,
``cent``, ``cross`` of `ReIDCriterion`; ``prompt_consistency``, ``cka_intra``, ``cka_inter``, ``lwf_distillation``,
``ewc_penalty``, ... of the plugins, each recorded through `record_loss_term`) and its gradient g_t on the **shared
backbone**: the parameters of the ViT (``model.backbone``: patch embedding, CLS/position embeddings, blocks, final
norm), which every method has, not the prompters, the modality embedding, the BNNeck or the classifier. It logs

- ``grad_share/<point>/<term>`` = ||g_t|| / sum_u ||g_u||: the share of the gradient norm (in [0, 1], summing to 1);
- ``grad_proj/<point>/<term>`` = <g_t, g> / ||g||^2 with g = sum_u g_u, the backbone gradient of the whole loss: the
  part of the actual update direction the term accounts for (sums to 1; negative when the term opposes the others);
- ``grad_norm/<point>/total`` = ||g||.

It uses the iteration's own minibatch and the graph already built for it (``torch.autograd.grad`` with the graph
retained), so training is unchanged bit for bit: no extra forward (no random numbers drawn, no batch-norm statistics
updated), no ``.grad`` touched, no optimiser or model state changed. The cost is two backwards per term at three
iterations per session, holding two backbone-sized gradients at a time.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from avalanche.core import SupervisedPlugin

__all__ = ["PROBE_POINTS", "GradShareProbe", "record_loss_term", "shared_backbone_parameters"]

PROBE_POINTS: tuple[str, ...] = ("start", "mid", "end")
"""Names of the probe iterations: 1, N/2 + 1 and N of a session of N steps."""


def record_loss_term(strategy: Any, name: str, weighted: torch.Tensor) -> None:
    """Called by every plugin that adds ``weighted`` (the term times its weight, with its graph) to the loss: kept
    for the probe while one is running on this iteration, otherwise nothing happens."""
    terms = getattr(strategy, "probe_terms", None)
    if isinstance(terms, dict):
        terms[name] = terms[name] + weighted if name in terms else weighted


def shared_backbone_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Trainable parameters of the ViT every method shares: the first submodule called ``backbone`` (``model.backbone``,
    or ``model.base.backbone`` for wrapped models)."""
    for name, module in model.named_modules():
        if name.split(".")[-1] == "backbone":
            return [p for p in module.parameters() if p.requires_grad]
    raise ValueError(f"GradShareProbe: {type(model).__name__} has no submodule called 'backbone'")


def _probe_iterations(total: int) -> dict[int, str]:
    """Iteration index (0-based) -> probe point, later names winning when a short session merges them."""
    points = {0: "start", total // 2: "mid", max(0, total - 1): "end"}
    return points


class GradShareProbe(SupervisedPlugin):
    """Per-session gradient shares of the loss terms on the shared backbone (`session_rows` after each session)."""

    def __init__(self) -> None:
        super().__init__()
        self._points: dict[int, str] = {}
        self._rows: dict[str, float] = {}
        self.session_rows: dict[str, float] = {}
        """Metric name -> value of the last finished session (``grad_share/...``, ``grad_proj/...``,
        ``grad_norm/...``)."""

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._rows = {}
        self._points = {}

    def before_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if not self._points:
            total = int(strategy.train_epochs) * max(1, len(strategy.dataloader))
            self._points = _probe_iterations(total)

    def before_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        iteration = int(strategy.clock.train_exp_iterations)
        active = iteration in self._points
        strategy.probe_terms = {} if active else None
        criterion = getattr(strategy, "_criterion", None)
        if criterion is not None and hasattr(criterion, "keep_weighted_terms"):
            criterion.keep_weighted_terms = active

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        terms = getattr(strategy, "probe_terms", None)
        if not isinstance(terms, dict):
            return
        point = self._points[int(strategy.clock.train_exp_iterations)]
        criterion = getattr(strategy, "_criterion", None)
        weighted = dict(getattr(criterion, "weighted_terms", None) or {})
        weighted.update(terms)
        self._measure(strategy, point, weighted)
        strategy.probe_terms = None
        if criterion is not None and hasattr(criterion, "keep_weighted_terms"):
            criterion.keep_weighted_terms = False
            criterion.weighted_terms = None

    def _measure(self, strategy: Any, point: str, weighted: dict[str, torch.Tensor]) -> None:
        """Shares of every term; holds at most two backbone-sized gradients at a time (the total and one term's)."""
        params = shared_backbone_parameters(strategy.model)
        live = {name: term for name, term in weighted.items() if isinstance(term, torch.Tensor) and term.requires_grad}
        if not weighted or not params:  # a frozen backbone (L2P) has no gradient for the terms to share: no rows
            return

        def grad_of(value: torch.Tensor) -> list[torch.Tensor]:
            found = torch.autograd.grad(value.float(), params, retain_graph=True, allow_unused=True)
            return [torch.zeros_like(p, dtype=torch.float32) if g is None else g.float() for p, g in zip(params, found)]

        # pass 1: each term's norm, and g as the sum of the terms' gradients (so the projections sum to one exactly);
        # pass 2: each term's gradient again, projected on g. Two backbone-sized gradients live at a time.
        total = [torch.zeros_like(p, dtype=torch.float32) for p in params]
        norms: dict[str, float] = {name: 0.0 for name in weighted}
        dots: dict[str, float] = {name: 0.0 for name in weighted}
        for name in sorted(live):
            parts = grad_of(live[name])
            norms[name] = math.sqrt(float(sum((g * g).sum() for g in parts)))
            for t, g in zip(total, parts):
                t.add_(g)
        total_sq = float(sum((t * t).sum() for t in total))
        for name in sorted(live):
            parts = grad_of(live[name])
            dots[name] = float(sum((g * t).sum() for g, t in zip(parts, total)))
        norm_sum = sum(norms.values())
        for name in sorted(weighted):
            self._rows[f"grad_share/{point}/{name}"] = norms[name] / norm_sum if norm_sum > 0 else float("nan")
            self._rows[f"grad_proj/{point}/{name}"] = dots[name] / total_sq if total_sq > 0 else float("nan")
        self._rows[f"grad_norm/{point}/total"] = math.sqrt(total_sq)

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.session_rows = dict(sorted(self._rows.items()))
        strategy.probe_terms = None
