"""`LossTermsPlugin`: per-session means of the unweighted loss terms (rows in the CSV: tests/runner/test_loss_rows.py)."""
from __future__ import annotations

import types

import pytest
import torch

from ckda_avalanche.plugins.loss_terms import LossTermsPlugin


class _TermPlugin:
    def __init__(self, values):
        self.values = values
        self.i = 0

    def loss_terms(self):
        value = self.values[self.i]
        return {} if value is None else {"extra": torch.tensor(value)}


def test_means_by_hand():
    plugin = LossTermsPlugin()
    extra = _TermPlugin([None, 2.0, 4.0])
    criterion = types.SimpleNamespace(last_terms=None)
    strategy = types.SimpleNamespace(_criterion=criterion, plugins=[plugin, extra])
    plugin.before_training_exp(strategy)
    for i, (ident, tri) in enumerate([(1.0, 0.5), (2.0, 0.25), (6.0, 0.0)]):
        extra.i = i
        criterion.last_terms = types.SimpleNamespace(identity=torch.tensor(ident), triplet=torch.tensor(tri),
                                                     cent=torch.tensor(0.0), cross=torch.tensor(1.0))
        plugin.after_training_iteration(strategy)
    plugin.after_training_exp(strategy)
    assert plugin.session_means == pytest.approx({"identity": 3.0, "triplet": 0.25, "cent": 0.0, "cross": 1.0,
                                                  "extra": 3.0})  # "extra" only where it was computed
