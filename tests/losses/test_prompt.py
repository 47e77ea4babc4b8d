"""Prompt consistency and orthogonality on hand-checked tensors."""
import math

import pytest
import torch

from ckda_avalanche.losses import prompt_consistency, prompt_orthogonality


def test_prompt_consistency_is_mean_absolute_difference():
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 2.0], [5.0, 4.0]], requires_grad=True)
    loss = prompt_consistency(student, teacher)  # |1|,0,|2|,0 -> 0.75
    assert loss.item() == pytest.approx(0.75)
    loss.backward()
    assert teacher.grad is None  # the teacher side is detached
    assert student.grad.tolist() == [[0.25, 0.0], [-0.25, 0.0]]


def test_prompt_consistency_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        prompt_consistency(torch.zeros(2, 3), torch.zeros(2, 4))


def test_orthogonality_hand_values():
    spec = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    com = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # sample 0: cos = 1/sqrt(2), squared 0.5; sample 1: orthogonal, 0 -> mean 0.25
    assert prompt_orthogonality(spec, com).item() == pytest.approx(0.25, abs=1e-6)
    assert prompt_orthogonality(spec, 3 * spec).item() == pytest.approx(1.0, abs=1e-6)
    assert math.isclose(prompt_orthogonality(spec.view(2, 1, 2), com.view(2, 1, 2)).item(), 0.25, abs_tol=1e-6)
