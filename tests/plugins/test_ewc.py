"""EWC penalty and Fisher estimate (losses/ewc.py)."""
import torch
from torch import nn

from ckda_avalanche.losses.ewc import FisherAccumulator, ewc_penalty


def test_penalty_formula_and_shape_mismatch_skipped():
    params = {"a": torch.tensor([1.0, 2.0], requires_grad=True), "cls": torch.zeros(3, 2, requires_grad=True)}
    anchors = {"a": torch.tensor([0.0, 0.0]), "cls": torch.zeros(5, 2)}
    fisher = {"a": torch.tensor([2.0, 0.5]), "cls": torch.ones(5, 2)}
    pen = ewc_penalty(params.items(), anchors, fisher)
    assert torch.allclose(pen, torch.tensor(2.0 * 1 + 0.5 * 4))
    pen.backward()
    assert torch.allclose(params["a"].grad, torch.tensor([4.0, 2.0]))
    assert ewc_penalty(params.items(), anchors, {}).item() == 0.0
    assert ewc_penalty([("a", anchors["a"])], anchors, fisher).item() == 0.0


def test_fisher_is_mean_squared_gradient():
    lin = nn.Linear(2, 1, bias=False)
    acc = FisherAccumulator(named_parameters=lin.named_parameters())
    grads = []
    for x in (torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])):
        lin.zero_grad()
        lin(x).sum().backward()
        grads.append(lin.weight.grad.clone())
        acc.add()
    fisher = acc.result()["weight"]
    assert torch.allclose(fisher, (grads[0] ** 2 + grads[1] ** 2) / 2)
