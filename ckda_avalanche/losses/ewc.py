"""Elastic Weight Consolidation penalty (Kirkpatrick et al., PNAS 2017).

``L_ewc = sum_s sum_i F_s,i * (theta_i - theta*_s,i)^2`` over the parameters present (with the same shape) in the
anchor of every past session s; ``F`` is the diagonal empirical Fisher information of that session's loss. Parameters
whose shape changed (the per-session identity classifier) or that did not exist are skipped: their old values carry
no constraint for a classifier that is re-created each session.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from ckda_avalanche.losses.numerics import float32_loss


@float32_loss
def ewc_penalty(
    named_parameters: Iterable[tuple[str, torch.Tensor]],
    anchors: Mapping[str, torch.Tensor],
    fisher: Mapping[str, torch.Tensor],
) -> torch.Tensor:
    """One session's quadratic penalty ``sum F * (theta - theta*)^2`` over matching names and shapes."""
    total: torch.Tensor | None = None
    for name, param in named_parameters:
        anchor = anchors.get(name)
        imp = fisher.get(name)
        if anchor is None or imp is None or anchor.shape != param.shape:
            continue
        term = (imp.to(param.device) * (param - anchor.to(param.device)).pow(2)).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return total


class FisherAccumulator:
    """Accumulates the diagonal empirical Fisher ``E[grad^2]`` of a loss over minibatches (Avalanche's estimator).

    Call :meth:`add` after each ``loss.backward()``; :meth:`result` returns the per-parameter mean.
    """

    def __init__(self, *, named_parameters: Iterable[tuple[str, torch.Tensor]]) -> None:
        self._params = [(n, p) for n, p in named_parameters if p.requires_grad]
        self._sums = {n: torch.zeros_like(p, memory_format=torch.preserve_format).detach() for n, p in self._params}
        self._batches = 0

    def add(self) -> None:
        """Add the squared current gradients (parameters without a gradient add zero)."""
        for name, param in self._params:
            if param.grad is not None:
                self._sums[name] += param.grad.detach().pow(2)
        self._batches += 1

    def result(self) -> dict[str, torch.Tensor]:
        """Mean squared gradient per parameter name."""
        if self._batches == 0:
            raise ValueError("FisherAccumulator.result: no minibatch was added")
        return {n: s / self._batches for n, s in self._sums.items()}
