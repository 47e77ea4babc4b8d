"""Set-ups that used to train for a whole session and then fail (or train silently wrong) now fail before the first
training iteration, naming the real reason: plugin order, Avalanche's own LwF / EWC with a ReID model, and a
classifier-less model under a plain `Naive`."""
import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import EWC, LwF, Naive
from avalanche.training.plugins import EvaluationPlugin, EWCPlugin, LwFPlugin, MASPlugin

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.losses import ReIDCriterion
from ckda_avalanche.losses.reid_criterion import ReIDLossConfig
from ckda_avalanche.models import create_model
from ckda_avalanche.models.output import ReIDOutput
from ckda_avalanche.plugins import (
    CKAPlugin,
    PromptConsistencyPlugin,
    ReIDBatchPlugin,
    TeacherPlugin,
    WeightMergePlugin,
)
from ckda_avalanche.plugins.checks import check_plugin_order
from ckda_avalanche.strategies import CKDA, ReIDTemplate, TrainConfig

SIZE = (32, 16)

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_checks")
    generate_synthetic(root, seed=0, scale=0.05, img_size=SIZE)
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=SIZE)


class CountSteps(SupervisedPlugin):
    """Counts forward passes in training: must stay 0 when a check fires before training."""

    def __init__(self):
        super().__init__()
        self.forwards = 0

    def before_forward(self, strategy, **kw):
        self.forwards += 1


def _plain(cls, *, num_classes, plugins, **extra):
    model = create_model("test", num_classes=num_classes, img_size=SIZE)
    return cls(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3), criterion=ReIDCriterion(),
               train_mb_size=8, train_epochs=1, eval_mb_size=32, device="cpu", plugins=plugins,
               evaluator=EvaluationPlugin(loggers=[]), **extra)


# ------------------------------------------------------------------------------------------------ plugin order
def _teacher_set():
    teacher = TeacherPlugin()
    return teacher, WeightMergePlugin(teacher=teacher), PromptConsistencyPlugin(teacher=teacher), CKAPlugin(
        teacher=teacher)


def test_correct_order_passes():
    teacher, merge, pc, cka = _teacher_set()
    check_plugin_order([ReIDBatchPlugin(), merge, teacher, pc, cka])
    check_plugin_order([teacher, pc])  # no merge at all is fine


@pytest.mark.parametrize("arrange,message", [
    (lambda t, m, p, c: [t, m, p, c],
     r"TeacherPlugin \(plugins\[0\]\) comes before WeightMergePlugin \(plugins\[1\]\)"),
    (lambda t, m, p, c: [m, c, t, p], r"CKAPlugin \(plugins\[1\]\) comes before its TeacherPlugin \(plugins\[2\]\)"),
    (lambda t, m, p, c: [m, p], r"TeacherPlugin of PromptConsistencyPlugin \(plugins\[1\]\) is not among"),
])
def test_wrong_order_is_refused_at_construction(arrange, message):
    plugins = arrange(*_teacher_set())
    with pytest.raises(ValueError, match=message):
        ReIDTemplate(model=create_model("test", num_classes=0, img_size=SIZE), device="cpu", plugins=plugins)


def test_a_merge_plugin_after_ckdas_own_teacher_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"TeacherPlugin \(plugins\[1\]\) comes before WeightMergePlugin"):
        CKDA(model=create_model("test", num_classes=0, img_size=SIZE), device="cpu", plugins=[WeightMergePlugin()])


def test_wrong_order_in_plain_naive_fails_before_the_first_step(stream):
    teacher, merge, pc, cka = _teacher_set()
    total = sum(e.reid.num_identities for e in stream.train_stream)
    steps = CountSteps()
    naive = _plain(Naive, num_classes=total, plugins=[ReIDBatchPlugin(), teacher, merge, pc, cka, steps])
    with pytest.raises(ValueError, match="comes before WeightMergePlugin"):
        naive.train(stream.train_stream[0])
    assert steps.forwards == 0 and naive.clock.train_iterations == 0


def test_plugins_appended_after_construction_are_checked_by_the_teacher(stream):
    strategy = ReIDTemplate(model=create_model("test", num_classes=0, img_size=SIZE), device="cpu",
                            config=TrainConfig(epochs=1, num_identities=2, num_instances=2, amp="off"))
    teacher, _, pc, _ = _teacher_set()
    strategy.plugins += [pc, teacher]
    with pytest.raises(ValueError, match="PromptConsistencyPlugin .* comes before its TeacherPlugin"):
        strategy.train(stream.train_stream[0])
    assert strategy.clock.train_iterations == 0


# ------------------------------------------------------------------------------------- Avalanche's LwF and EWC
@pytest.mark.parametrize("cls,extra,plugin,instead", [
    (LwF, dict(alpha=1.0, temperature=2.0), "LwFPlugin", "ReIDLwFPlugin"),
    (EWC, dict(ewc_lambda=1.0), "EWCPlugin", "ReIDEWCPlugin"),
])
def test_avalanche_lwf_and_ewc_fail_before_training_with_the_real_reason(stream, cls, extra, plugin, instead):
    total = sum(e.reid.num_identities for e in stream.train_stream)
    steps = CountSteps()
    strategy = _plain(cls, num_classes=total, plugins=[ReIDBatchPlugin(), steps], **extra)
    with pytest.raises(ValueError, match=rf"Avalanche's {plugin} cannot drive a ckda ReID model: .*no modality.*"
                                         rf"{instead}") as info:
        strategy.train(stream.train_stream[0])
    assert "plugins.ReIDBatchPlugin does this" not in str(info.value)
    assert steps.forwards == 0 and strategy.clock.train_iterations == 0


@pytest.mark.parametrize("plugin", [LwFPlugin(), EWCPlugin(ewc_lambda=1.0), MASPlugin()])
def test_incompatible_avalanche_plugins_are_refused_by_our_strategies(plugin):
    with pytest.raises(ValueError, match=f"Avalanche's {type(plugin).__name__} cannot drive"):
        ReIDTemplate(model=create_model("test", num_classes=0, img_size=SIZE), device="cpu", plugins=[plugin])


# ------------------------------------------------------------------------------- model without identity classifier
def test_naive_with_a_classifier_less_model_fails_before_training(stream):
    steps = CountSteps()
    naive = _plain(Naive, num_classes=0, plugins=[ReIDBatchPlugin(), steps])
    with pytest.raises(ValueError, match=r"no identity classifier \(created without num_classes\).*weight 1\.0"):
        naive.train(stream.train_stream[0])
    assert steps.forwards == 0


def test_naive_with_a_classifier_less_model_trains_when_the_identity_loss_is_off(stream):
    model = create_model("test", num_classes=0, img_size=SIZE)
    naive = Naive(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
                  criterion=ReIDCriterion(config=ReIDLossConfig(id_weight=0.0)), train_mb_size=8, train_epochs=1,
                  device="cpu", plugins=[ReIDBatchPlugin()], evaluator=EvaluationPlugin(loggers=[]))
    naive.train(stream.train_stream[0])
    assert naive.clock.train_iterations > 0


def test_criterion_refuses_missing_logits_when_the_identity_loss_is_on():
    feat = torch.randn(4, 8)
    output = ReIDOutput(logits=None, feat=feat, bn_feat=feat, prompt=None, modality=torch.tensor([0, 0, 1, 1]))
    targets = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="no identity logits"):
        ReIDCriterion()(output, targets)
    off = ReIDCriterion(config=ReIDLossConfig(id_weight=0.0))
    assert torch.isfinite(off(output, targets))
    assert float(off.last_terms.identity) == 0.0
