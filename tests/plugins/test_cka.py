"""CKAPlugin: prototype computation (hand-checked), loss term, options, ordering and state."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from ckda_avalanche.models import create_model
from ckda_avalanche.plugins import CKAPlugin, DualPrototypes, TeacherPlugin, compute_dual_prototypes

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (32, 16)

_spec = importlib.util.spec_from_file_location("ckda_reference", Path(__file__).parents[1] / "ckda_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


class Normalise(nn.Module):
    """Eval output = L2-normalised input vector (so prototypes are hand-computable)."""

    def forward(self, x, modality):
        assert not self.training
        return F.normalize(x, dim=1)


def _dataset():
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0], [5.0, 0.0], [2.0, 0.0]])
    pid = torch.tensor([7, 7, 7, 9, 9, 9])
    modality = torch.tensor([0, 0, 1, 0, 1, 1])
    zeros = torch.zeros(6, dtype=torch.long)
    return TensorDataset(x, pid, zeros, modality, zeros)


def test_prototypes_are_per_identity_and_modality_means_of_normalised_features():
    model = Normalise().train()
    protos = compute_dual_prototypes(model, _dataset(), batch_size=4)
    # id 7 visible: mean([0.6, 0.8], [1, 0]) = [0.8, 0.4]; id 9 visible: [0, 1]
    assert protos.visible_ids.tolist() == [7, 9]
    assert torch.allclose(protos.visible, torch.tensor([[0.8, 0.4], [0.0, 1.0]]))
    # id 7 infrared: [0, 1]; id 9 infrared: mean([1, 0], [1, 0]) = [1, 0]
    assert protos.infrared_ids.tolist() == [7, 9]
    assert torch.allclose(protos.infrared, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert model.training  # mode restored
    quirk = compute_dual_prototypes(model, _dataset(), visible_as_infrared=True)
    assert torch.equal(quirk.infrared, quirk.visible) and torch.equal(quirk.infrared_ids, quirk.visible_ids)


def _strategy(student_feature="feat", intra=0.3, inter=0.7, accumulate=False):
    torch.manual_seed(0)
    model = create_model("test", num_classes=3, img_size=SIZE).train()
    teacher = TeacherPlugin()
    plugin = CKAPlugin(teacher=teacher, intra_weight=intra, inter_weight=inter, student_feature=student_feature,
                       accumulate=accumulate)
    x, modality = torch.randn(6, 3, *SIZE), torch.tensor([0, 0, 0, 1, 1, 1])
    strategy = SimpleNamespace(model=model, plugins=[teacher, plugin], mb_x=x, mbatch=[x, None, None, modality, None],
                               mb_output=model(x, modality), loss=torch.tensor(0.5),
                               clock=SimpleNamespace(train_iterations=0))
    return model, teacher, plugin, strategy


def _protos(seed, n=4, dim=64):
    g = torch.Generator().manual_seed(seed)
    return DualPrototypes(torch.randn(n, dim, generator=g), torch.arange(n), torch.randn(n, dim, generator=g),
                          torch.arange(n))


@pytest.mark.parametrize("student_feature", ["feat", "normalized_bn"])
def test_adds_weighted_intra_and_inter_terms(student_feature):
    model, teacher, plugin, strategy = _strategy(student_feature)
    plugin.before_backward(strategy)
    assert strategy.loss.item() == 0.5  # no teacher and no prototypes yet
    teacher.refresh(model)
    plugin.history = [_protos(1)]
    plugin.before_backward(strategy)
    out = strategy.mb_output
    # expected value from the float64 reference of docs/method.md §4.4 (tests/ckda_reference.py), not from the package
    student = out.feat.detach() if student_feature == "feat" else out.bn_feat.detach()
    teacher_feature = ref.bnneck_feature(model, strategy.mb_x, strategy.mbatch[3])  # eval mode, running stats
    intra, inter = ref.cka_terms(student, teacher_feature, out.modality, plugin.history[0].visible,
                                 plugin.history[0].infrared, scale=0.1)
    assert strategy.loss.item() == pytest.approx(0.5 + 0.3 * intra + 0.7 * inter, rel=1e-6, abs=3e-7)
    assert plugin.last_terms[0].item() == pytest.approx(intra, rel=1e-4, abs=3e-7)
    assert plugin.last_terms[1].item() == pytest.approx(inter, rel=1e-4, abs=3e-7)


def test_only_last_session_prototypes_unless_accumulate():
    _, _, plugin, _ = _strategy()
    plugin.history = [_protos(1)]
    assert plugin.prototypes is plugin.history[-1]
    _, _, acc, _ = _strategy(accumulate=True)
    acc.history = [_protos(1), _protos(2)]
    assert acc.prototypes.visible.shape[0] == 8


def test_prototypes_must_come_from_the_refreshed_teacher():
    model, teacher, plugin, strategy = _strategy()
    teacher.before_training_exp(strategy)  # teacher not yet refreshed this session
    with pytest.raises(RuntimeError, match="TeacherPlugin before CKAPlugin"):
        plugin.after_training_exp(strategy)


def test_state_round_trip_and_memory():
    _, _, plugin, _ = _strategy()
    plugin.history = [_protos(3)]
    state = plugin.state_dict()
    _, _, other, _ = _strategy()
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.prototypes, plugin.prototypes))
    assert other.memory_report()["prototypes"] == (2 * 4 * 64) * 4 + 2 * 4 * 8


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="student_feature"):
        CKAPlugin(teacher=TeacherPlugin(), student_feature="g")
    with pytest.raises(ValueError, match="weights"):
        CKAPlugin(teacher=TeacherPlugin(), intra_weight=-1.0)
