"""PromptConsistencyPlugin adds exactly alpha * L_p from the second session on, with the shared teacher."""
import copy
from types import SimpleNamespace

import pytest
import torch

from ckda_avalanche.models import create_model
from ckda_avalanche.plugins import PromptConsistencyPlugin, PromptOrthogonalityPlugin, TeacherPlugin
from ckda_avalanche.losses import prompt_orthogonality

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = (32, 16)


def _setup(alpha: float = 2.0, with_teacher: bool = True):
    torch.manual_seed(0)
    model = create_model("test", num_classes=3, img_size=SIZE)
    teacher = TeacherPlugin()
    plugin = PromptConsistencyPlugin(teacher=teacher, alpha=alpha)
    x, modality = torch.randn(4, 3, *SIZE), torch.tensor([0, 0, 1, 1])
    model.train()
    strategy = SimpleNamespace(model=model, plugins=[teacher, plugin] if with_teacher else [plugin], mb_x=x,
                               mbatch=[x, None, None, modality, None], mb_output=model(x, modality),
                               loss=torch.tensor(1.0), clock=SimpleNamespace(train_iterations=0))
    return model, teacher, plugin, strategy


def test_no_term_before_a_teacher_exists():
    _, _, plugin, strategy = _setup()
    plugin.before_backward(strategy)
    assert strategy.loss.item() == 1.0 and plugin.last_loss is None


def test_adds_alpha_times_l1_between_prompts():
    model, teacher, plugin, strategy = _setup(alpha=2.0)
    teacher.refresh(model)
    with torch.no_grad():
        teacher.model.prompter.msp.generators[0].up.weight.add_(0.5)  # make the teacher's prompts differ
    plugin.before_backward(strategy)
    # L_p = mean |P(x) - P~(x)| (docs/method.md §4.4) with P~ from the frozen teacher in eval mode, computed here
    frozen = copy.deepcopy(teacher.model).eval()
    with torch.no_grad():
        teacher_prompt = frozen.forward_features(strategy.mb_x, strategy.mbatch[3])[1]
    expected = (strategy.mb_output.prompt.detach() - teacher_prompt).abs().mean()
    assert expected.item() > 0
    assert strategy.loss.item() == pytest.approx(1.0 + 2.0 * expected.item(), rel=1e-5)
    assert plugin.last_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_alpha_zero_adds_nothing():
    model, teacher, plugin, strategy = _setup(alpha=0.0)
    teacher.refresh(model)
    plugin.before_backward(strategy)
    assert strategy.loss.item() == 1.0


def test_teacher_must_be_registered_and_first():
    _, _, plugin, strategy = _setup(with_teacher=False)
    with pytest.raises(RuntimeError, match="not among"):
        plugin.before_training_exp(strategy)
    _, teacher, plugin, strategy = _setup()
    strategy.plugins = [plugin, teacher]
    with pytest.raises(RuntimeError, match="before its TeacherPlugin"):
        plugin.before_training_exp(strategy)


def test_orthogonality_plugin_adds_weighted_penalty():
    model, _, _, strategy = _setup()
    plugin = PromptOrthogonalityPlugin(weight=3.0)
    model.eval()  # no dropout: prompt_components is then deterministic
    plugin.before_backward(strategy)
    spec, com = model.prompt_components(strategy.mb_x, strategy.mbatch[3])
    assert strategy.loss.item() == pytest.approx(1.0 + 3.0 * prompt_orthogonality(spec, com).item(), rel=1e-5)
