"""TeacherPlugin: frozen copy, no gradients, unchanged by the student's training, cached outputs, state round trip."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ckda_avalanche.losses import prompt_consistency
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins import TeacherPlugin

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (32, 16)


_spec = importlib.util.spec_from_file_location("ckda_reference", Path(__file__).parents[1] / "ckda_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _model(seed: int = 0):
    """A test-preset model whose BNNeck has non-trivial running statistics (eval and train BN differ)."""
    torch.manual_seed(seed)
    model = create_model("test", num_classes=4, img_size=SIZE)
    with torch.no_grad():
        model.head.bnneck.running_mean.normal_(0.0, 0.5)
        model.head.bnneck.running_var.uniform_(0.5, 1.5)
    return model


def test_refresh_makes_a_frozen_eval_copy_without_classifier():
    model = _model()
    teacher = TeacherPlugin()
    assert not teacher.active and teacher.memory_report() == {"teacher": 0}
    teacher.refresh(model)
    assert teacher.active and not teacher.model.training
    assert all(not p.requires_grad for p in teacher.model.parameters())
    assert teacher.model.num_classes == 0 and model.num_classes == 4
    assert teacher.memory_report()["teacher"] > 0


def test_outputs_match_eval_forward_and_are_cached_per_iteration():
    model = _model()
    teacher = TeacherPlugin()
    teacher.refresh(model)
    x, modality = torch.randn(4, 3, *SIZE), torch.tensor([0, 0, 1, 1])
    strategy = SimpleNamespace(mb_x=x, mbatch=[x, None, None, modality, None],
                               clock=SimpleNamespace(train_iterations=7))
    out = teacher.outputs(strategy)
    # f~ = L2norm(BN_old(f_old)) in eval mode, BN written out with its running statistics (tests/ckda_reference.py)
    expected = ref.bnneck_feature(model, x, modality)
    assert not torch.allclose(expected, ref.bnneck_feature(model, x, modality, train_mode=True), atol=1e-3)
    model.eval()
    with torch.no_grad():
        _, expected_prompt = model.forward_features(x, modality)
    assert torch.allclose(out.feature, expected, atol=1e-5)
    assert torch.allclose(out.prompt, expected_prompt, atol=1e-6)
    assert teacher.outputs(strategy) is out  # same iteration: cached
    strategy.clock.train_iterations = 8
    assert teacher.outputs(strategy) is not out


def test_teacher_gets_no_gradient_and_does_not_change_when_the_student_trains():
    student = _model()
    teacher = TeacherPlugin()
    teacher.refresh(student)
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    student.train()
    x, modality = torch.randn(4, 3, *SIZE), torch.tensor([0, 0, 1, 1])
    for _ in range(2):
        out = student(x, modality)
        t = teacher.compute(x, modality)
        loss = prompt_consistency(out.prompt, t.prompt) + (out.feat - t.feature).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in teacher.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.model.state_dict().items())
    changed = [k for k, v in student.state_dict().items() if k in before and not torch.equal(before[k], v)]
    assert changed  # the student did train


def test_state_round_trip_needs_a_template():
    model = _model()
    teacher = TeacherPlugin()
    teacher.refresh(model)
    state = teacher.state_dict()
    fresh = TeacherPlugin()
    with pytest.raises(RuntimeError, match="template"):
        fresh.load_state_dict(state)
    other = _model(seed=1)
    fresh.load_state_dict(state, template=other)
    x, modality = torch.randn(2, 3, *SIZE), torch.tensor([0, 1])
    assert torch.allclose(fresh.compute(x, modality).feature, teacher.compute(x, modality).feature)
    empty = TeacherPlugin()
    empty.load_state_dict({"model": None})
    assert not empty.active


def test_compute_without_teacher_is_an_error():
    with pytest.raises(RuntimeError, match="no teacher"):
        TeacherPlugin().compute(torch.zeros(1, 3, *SIZE), torch.zeros(1, dtype=torch.long))


def test_feature_is_unit_norm():
    teacher = TeacherPlugin()
    teacher.refresh(_model())
    out = teacher.compute(torch.randn(3, 3, *SIZE), torch.tensor([0, 1, 1]))
    assert torch.allclose(out.feature.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(F.normalize(out.feature, dim=1), out.feature)


def test_teacher_equal_to_the_model_is_not_stored_twice():
    """Right after a session the teacher is a copy of the model: the state says so instead of holding its weights,
    and restoring it (after the model) gives the same teacher; a teacher that differs keeps its weights."""
    model = _model()
    teacher = TeacherPlugin()
    teacher.bind_template(model)
    teacher.refresh(model)
    state = teacher.state_dict()
    assert state == {"model": None, "same_as_model": True}
    restored = TeacherPlugin()
    restored.bind_template(_model(seed=0))  # the strategy restores its model first
    restored.load_state_dict(state)
    expected = teacher.model.state_dict()
    got = restored.model.state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert restored.model.num_classes == 0 and not restored.model.training
    with torch.no_grad():  # the student moves on: the teacher must now be stored
        next(model.parameters()).add_(1.0)
    state = teacher.state_dict()
    assert state["model"] is not None and not state.get("same_as_model")
    empty = TeacherPlugin()
    empty.bind_template(model)
    assert empty.state_dict() == {"model": None}  # no teacher yet
