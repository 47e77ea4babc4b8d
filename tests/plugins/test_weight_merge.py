"""WeightMergePlugin: EMA arithmetic, buffers, classifier exclusion, first-session behaviour, order checks."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ckda_avalanche.models import create_model
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


# ---------------------------------------------------------------------------------------------- the real model
SIZE = (32, 16)
MUST_MERGE = (
    "backbone.pos_embed", "backbone.cls_token", "modality_embed", "backbone.patch_embed.proj.weight",
    "backbone.blocks.0.attn.qkv.weight", "backbone.norm.weight", "head.bnneck.weight", "head.bnneck.running_mean",
    "head.bnneck.running_var", "prompter.msp.generators.0.down.weight", "prompter.msp.generators.1.norm.running_mean",
    "prompter.msp.generators.1.norm.running_var", "prompter.mcp.instance_norm.running_mean",
    "prompter.mcp.instance_norm.running_var", "prompter.mcp.gate_ori.0.weight", "prompter.mcp.up.bias",
)
"""Spec §5.1: prompts, BN statistics, modality embedding, position embedding and the ViT are all merged."""


def _vit(seed: int, classes: int):
    """A test-preset ViTReID whose every float parameter and buffer (running statistics included) is random, and
    whose integer buffers hold seed-dependent counts."""
    torch.manual_seed(seed)
    model = create_model("test", num_classes=classes, img_size=SIZE)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + (0.5 if name.endswith("running_var") else -0.5))
            else:
                t.fill_(10 * seed + 1)
    return model


def _clone_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_merged(model, old, new, lam):
    """Every float entry of equal shape is lam * old + (1 - lam) * new (computed here); the classifier and the
    integer buffers (documented: keep the new value) are the new model's."""
    state = model.state_dict()
    assert set(state) == set(new)
    for name, value in state.items():
        if name.startswith("head.classifier") or not value.is_floating_point():
            assert torch.equal(value, new[name]), name
        else:
            assert old[name].shape == value.shape, name
            expected = lam * old[name] + (1.0 - lam) * new[name]
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7, msg=name)
            assert not torch.allclose(value, new[name]), name  # the merge really moved it


def test_merge_state_into_covers_every_float_parameter_and_buffer_of_the_vit():
    old_model, new_model = _vit(1, classes=5), _vit(2, classes=3)
    old, new = _clone_state(old_model), _clone_state(new_model)
    merged = merge_state_into(new_model, old, lam=0.7)
    _check_merged(new_model, old, new, 0.7)
    float_names = {k for k, v in new.items() if v.is_floating_point() and not k.startswith("head.classifier")}
    assert set(merged) == float_names
    assert set(MUST_MERGE) <= set(merged)
    assert {k for k in new if k.endswith("num_batches_tracked")}  # the integer buffers exist and were kept (above)


def test_merge_state_into_never_merges_the_classifier_even_when_sizes_match():
    old_model, new_model = _vit(1, classes=3), _vit(2, classes=3)
    old, new = _clone_state(old_model), _clone_state(new_model)
    merge_state_into(new_model, old, lam=0.7)
    _check_merged(new_model, old, new, 0.7)


def test_plugin_with_teacher_merges_the_vit_with_the_previous_merged_model():
    """Two sessions through WeightMergePlugin + TeacherPlugin, as CKDA runs them: theta_2 = 0.7 theta_1 + 0.3 theta*_2."""
    model = _vit(1, classes=4)
    teacher = TeacherPlugin()
    merge = WeightMergePlugin(lam=0.7, teacher=teacher)
    strategy = _strategy(model, [merge, teacher])
    for plugin in (merge, teacher):
        plugin.before_training_exp(strategy)
    first = _clone_state(model)  # "trained" weights of session 1
    for plugin in (merge, teacher):
        plugin.after_training_exp(strategy)
    assert merge.last_merged == [] and all(torch.equal(model.state_dict()[k], v) for k, v in first.items())
    for plugin in (merge, teacher):
        plugin.before_training_exp(strategy)
    trained = _vit(2, classes=6)  # session 2 "training": new weights and a new classifier size
    model.reset_classifier(6)
    model.load_state_dict(trained.state_dict())
    second = _clone_state(model)
    for plugin in (merge, teacher):
        plugin.after_training_exp(strategy)
    _check_merged(model, first, second, 0.7)
    assert set(MUST_MERGE) <= set(merge.last_merged)
    merged_state = model.state_dict()
    assert all(torch.equal(v, merged_state[k]) for k, v in teacher.model.state_dict().items())  # teacher = merged
