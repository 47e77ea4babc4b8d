"""`GradShareProbe` maths on a toy model whose gradients are known by hand."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ckda_avalanche.plugins.grad_share import GradShareProbe, record_loss_term, shared_backbone_parameters


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 2)
        self.head = nn.Linear(2, 1)


def test_shares_and_projections_of_terms_with_known_gradients():
    model = _Toy()
    probe = GradShareProbe()
    strategy = SimpleNamespace(model=model, clock=SimpleNamespace(train_exp_iterations=0), _criterion=None,
                               train_epochs=1, dataloader=[None] * 4)
    probe.before_training_exp(strategy)
    probe.before_training_epoch(strategy)  # 4 steps: probes at iterations 0 (start), 2 (mid), 3 (end)
    probe.before_training_iteration(strategy)
    w = model.backbone.weight
    # d/dw of sum(w) is all ones (norm sqrt(8) with the bias' zero gradient); of 3 sum(w): threefold;
    # of -sum(w): opposite. The head-only term has no backbone gradient.
    record_loss_term(strategy, "a", w.sum())
    record_loss_term(strategy, "b", 3 * w.sum())
    record_loss_term(strategy, "c", -w.sum())
    record_loss_term(strategy, "head_only", model.head.weight.sum())
    probe.before_backward(strategy)
    probe.after_training_exp(strategy)
    rows = probe.session_rows
    # norms 1 : 3 : 1 : 0 (times sqrt(6)); total gradient = (1 + 3 - 1) = 3 ones
    assert rows["grad_share/start/a"] == pytest.approx(1 / 5)
    assert rows["grad_share/start/b"] == pytest.approx(3 / 5)
    assert rows["grad_share/start/c"] == pytest.approx(1 / 5)
    assert rows["grad_share/start/head_only"] == 0.0
    # projection on the total: <g_t, 3 1> / ||3 1||^2 = 1/3, 1, -1/3, 0
    assert rows["grad_proj/start/a"] == pytest.approx(1 / 3)
    assert rows["grad_proj/start/b"] == pytest.approx(1.0)
    assert rows["grad_proj/start/c"] == pytest.approx(-1 / 3)
    assert rows["grad_proj/start/head_only"] == 0.0
    assert rows["grad_norm/start/total"] == pytest.approx(3 * 6 ** 0.5)
    assert w.grad is None  # no .grad touched


def test_terms_are_only_kept_at_probe_iterations():
    model = _Toy()
    probe = GradShareProbe()
    strategy = SimpleNamespace(model=model, clock=SimpleNamespace(train_exp_iterations=1), _criterion=None,
                               train_epochs=1, dataloader=[None] * 4)
    probe.before_training_exp(strategy)
    probe.before_training_epoch(strategy)
    probe.before_training_iteration(strategy)  # iteration 1 of 4: not a probe point
    record_loss_term(strategy, "a", model.backbone.weight.sum())
    probe.before_backward(strategy)
    probe.after_training_exp(strategy)
    assert probe.session_rows == {}


def test_the_shared_backbone_is_the_vit_only():
    from ckda_avalanche.models import create_model

    model = create_model("test", num_classes=3)
    ids = {id(p) for p in shared_backbone_parameters(model)}
    assert ids == {id(p) for p in model.backbone.parameters()}
    assert not ids & {id(p) for p in model.prompter.parameters()}
    assert not ids & {id(p) for p in model.head.parameters()}
