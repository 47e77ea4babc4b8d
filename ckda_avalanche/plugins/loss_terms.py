"""`LossTermsPlugin`: the per-session mean of every loss term, unweighted, so their magnitudes can be compared.

It reads the criterion's `ReIDLossTerms` (L_id, L_tri, L_cent, L_cross) and, from every plugin of the strategy that
has a ``loss_terms() -> dict[str, Tensor | float]`` method, that plugin's terms of the same iteration (e.g. CKDA's
L_p, L_intra and L_inter). Terms are summed as detached tensors (no host sync per iteration) and averaged over the
iterations where they were computed. The runner writes the means as ``loss/<term>`` rows of the tidy CSV.

Why this exists: at the published s = 0.1, CKDA's KL terms are about 1e-7, many orders of magnitude below the base
loss; the logged means let users judge that setting against the ``sharp_affinity`` option.
"""
from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin

__all__ = ["LossTermsPlugin"]

_CRITERION_TERMS = ("identity", "triplet", "cent", "cross")


class LossTermsPlugin(SupervisedPlugin):
    """Accumulates unweighted loss terms over a training session; `session_means` holds the last session's."""

    def __init__(self) -> None:
        super().__init__()
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self.session_means: dict[str, float] = {}
        """Term name -> mean over the last finished session's iterations (only terms that were computed)."""

    def _add(self, name: str, value: torch.Tensor | float) -> None:
        value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
        self._sums[name] = self._sums[name] + value if name in self._sums else value.clone()
        self._counts[name] = self._counts.get(name, 0) + 1

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._sums, self._counts = {}, {}

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        terms = getattr(getattr(strategy, "_criterion", None), "last_terms", None)
        if terms is not None:
            for name in _CRITERION_TERMS:
                self._add(name, getattr(terms, name))
        for plugin in strategy.plugins:
            get = getattr(plugin, "loss_terms", None)
            if plugin is not self and callable(get):
                for name, value in get().items():
                    self._add(name, value)

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.session_means = {name: float(total) / self._counts[name] for name, total in sorted(self._sums.items())}
