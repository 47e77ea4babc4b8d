"""WeightMergePlugin: EMA arithmetic, buffers, classifier exclusion, first-session behaviour, order checks."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ckda_avalanche.plugins import TeacherPlugin, WeightMergePlugin, merge_state_into


class Toy(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Linear(2, 2)
        self.bn = nn.BatchNorm1d(2)
        self.head = nn.Module()
        self.head.classifier = nn.Linear(2, classes, bias=False)

    def reset_classifier(self, n: int) -> None:
        self.head.classifier = nn.Linear(2, n, bias=False) if n else None


def _fill(model: Toy, value: float) -> Toy:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
        model.bn.running_mean.fill_(value)
        model.bn.running_var.fill_(value)
        model.bn.num_batches_tracked.fill_(int(value))
    return model


def test_merge_arithmetic_buffers_and_classifier_exclusion():
    new, old = _fill(Toy(), 10.0), _fill(Toy(classes=5), 0.0)
    merged = merge_state_into(new, old.state_dict(), lam=0.7)
    # 0.7 * 0 + 0.3 * 10 = 3 for weights, biases and BN running statistics
    assert torch.allclose(new.body.weight, torch.full((2, 2), 3.0))
    assert torch.allclose(new.bn.bias, torch.full((2,), 3.0))
    assert torch.allclose(new.bn.running_mean, torch.full((2,), 3.0))
    assert torch.allclose(new.bn.running_var, torch.full((2,), 3.0))
    assert int(new.bn.num_batches_tracked) == 10  # integer buffer keeps the new value
    assert torch.all(new.head.classifier.weight == 10.0)  # classifier never merged
    assert "head.classifier.weight" not in merged and "bn.running_mean" in merged and "body.weight" in merged


def test_merge_skips_shape_mismatch_even_when_not_excluded():
    new, old = _fill(Toy(classes=3), 1.0), _fill(Toy(classes=5), 0.0)
    merged = merge_state_into(new, old.state_dict(), lam=0.5, exclude=())
    assert "head.classifier.weight" not in merged
    assert torch.all(new.head.classifier.weight == 1.0) and torch.all(new.body.weight == 0.5)


def _strategy(model, plugins):
    return SimpleNamespace(model=model, plugins=plugins)


def test_plugin_snapshot_path_merges_from_second_session_only():
    model = _fill(Toy(), 1.0)
    plugin = WeightMergePlugin(lam=0.7)
    strategy = _strategy(model, [plugin])
    plugin.before_training_exp(strategy)
    _fill(model, 5.0)  # "training"
    plugin.after_training_exp(strategy)
    assert torch.all(model.body.weight == 5.0) and plugin.last_merged == []  # first session: no previous model
    plugin.before_training_exp(strategy)  # snapshot of the merged weights = 5
    assert plugin.memory_report()["previous_weights"] > 0
    _fill(model, 15.0)
    plugin.after_training_exp(strategy)
    assert torch.allclose(model.body.weight, torch.full((2, 2), 0.7 * 5 + 0.3 * 15))
    assert plugin.memory_report() == {"previous_weights": 0}  # nothing kept between sessions
    assert plugin.state_dict()["sessions_seen"] == 2


def test_plugin_uses_shared_teacher_weights_without_snapshot():
    model = _fill(Toy(), 2.0)
    teacher = TeacherPlugin()
    merge = WeightMergePlugin(lam=0.5, teacher=teacher)
    strategy = _strategy(model, [merge, teacher])
    for value in (2.0, 6.0):  # two sessions; the teacher is refreshed (after merge) at the end of each
        merge.before_training_exp(strategy)
        teacher.before_training_exp(strategy)
        if value == 6.0:
            assert merge.memory_report()["previous_weights"] == 0
        _fill(model, value)
        merge.after_training_exp(strategy)
        teacher.after_training_exp(strategy)
    assert torch.allclose(model.body.weight, torch.full((2, 2), 4.0))  # 0.5 * 2 (teacher) + 0.5 * 6
    assert torch.allclose(teacher.model.body.weight, torch.full((2, 2), 4.0))  # teacher = merged model


def test_wrong_order_is_an_error():
    model = Toy()
    teacher = TeacherPlugin()
    merge = WeightMergePlugin(lam=0.5, teacher=teacher)
    strategy = _strategy(model, [teacher, merge])
    merge.before_training_exp(strategy)
    teacher.before_training_exp(strategy)
    with pytest.raises(RuntimeError, match="WeightMergePlugin before TeacherPlugin"):
        teacher.after_training_exp(strategy)


def test_lambda_validation():
    with pytest.raises(ValueError, match="lam"):
        WeightMergePlugin(lam=1.0)
    model = _fill(Toy(), 1.0)
    off = WeightMergePlugin(lam=0.0)
    strategy = _strategy(model, [off])
    for value in (1.0, 9.0):
        off.before_training_exp(strategy)
        _fill(model, value)
        off.after_training_exp(strategy)
    assert torch.all(model.body.weight == 9.0)
