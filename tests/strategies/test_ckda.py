"""CKDA: configuration, ablations (each flag removes exactly its term), and a two-session end-to-end run on tiny
synthetic data (training improves mAP, ReID metrics are emitted, the teacher is frozen, prototypes come from the
merged model, state round trip). Also the plugins inside a plain Avalanche `Naive`."""
import copy
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.evaluation import reid_metrics
from ckda_avalanche.losses import ReIDCriterion
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins import (
    CKAPlugin,
    DualPrototypes,
    PromptConsistencyPlugin,
    ReIDBatchPlugin,
    TeacherPlugin,
    WeightMergePlugin,
)
from ckda_avalanche.strategies import CKDA, CKDA_ABLATIONS, CKDA_PAPER, CKDAConfig, TrainConfig

_spec = importlib.util.spec_from_file_location("ckda_reference", Path(__file__).parents[1] / "ckda_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]
SIZE = (32, 16)

E2E_SIZE = (32, 16)
MAP0 = "mAP_Exp/eval_phase/test_stream/Exp000"
E2E_EPOCHS = 15
"""Epochs of the first session (16 identities, batches of 6 ids x 4 x 2 images); the second session runs 2."""


def _config(**kw):
    base = dict(lr=1e-3, epochs=1, num_identities=2, num_instances=2, amp="off", warmup_epochs=0)
    base.update(kw)
    return TrainConfig(**base)


# ---------------------------------------------------------------------------------------------- configuration
def test_paper_preset_and_effective_weights():
    cfg = CKDAConfig.paper()
    assert cfg == CKDA_PAPER
    assert (cfg.alpha, cfg.beta, cfg.mu, cfg.affinity_scale, cfg.merge_lambda, cfg.w_new) == (1, 1, 0.5, 0.1, 0.7, 1)
    assert (cfg.effective_intra_weight, cfg.effective_inter_weight) == (0.5, 0.5)
    assert cfg.with_flags("sharp_affinity").effective_affinity_scale == 10.0
    assert CKDA_ABLATIONS["inter_only"].effective_inter_weight == 0.5  # the other term is not reweighted
    assert CKDA_ABLATIONS["finetune"].needs_teacher is False
    assert CKDA_ABLATIONS["no_msp"].model_overrides()["use_msp"] is False
    assert cfg.with_flags("quirk_llcm_flip_test_modality", "quirk_llcm_max_train_label_500").stream_overrides() == {
        "llcm_flip_test_modality": True, "reader_options": {"llcm": {"max_train_label": 500}}}
    with pytest.raises(ValueError, match="unknown flag"):
        cfg.with_flags("no_such_flag")
    with pytest.raises(ValueError, match="exclude each other"):
        CKDAConfig(inter_only=True, intra_only=True)
    with pytest.raises(TypeError, match="CKDAConfig.alpha"):
        CKDAConfig(alpha="1")


def test_plugin_order_is_merge_teacher_then_users():
    model = create_model("test", num_classes=0, img_size=SIZE)
    strategy = CKDA(model=model, config=_config(), device="cpu")
    names = [type(p).__name__ for p in strategy.plugins]
    assert names[:4] == ["WeightMergePlugin", "TeacherPlugin", "PromptConsistencyPlugin", "CKAPlugin"]
    assert strategy.merge.teacher is strategy.teacher and strategy.cka.teacher is strategy.teacher


@pytest.mark.parametrize("flag,attr,field", [
    ("no_msp", "msp", "use_msp"), ("no_mcp", "mcp", "use_mcp"),
])
def test_model_ablations_remove_the_module_and_mismatches_are_rejected(flag, attr, field):
    method = CKDA_ABLATIONS[flag]
    model = create_model("test", num_classes=0, img_size=SIZE, config_overrides=method.model_overrides())
    assert getattr(model.prompter, attr) is None
    CKDA(model=model, method=method, config=_config(), device="cpu")
    with pytest.raises(ValueError, match=field):
        CKDA(model=create_model("test", num_classes=0, img_size=SIZE), method=method, config=_config(), device="cpu")


def test_other_model_ablations_reach_the_model_config():
    for flag, field in [("no_mcp_instance_norm", "mcp_instance_norm"), ("no_mcp_gates", "mcp_gates"),
                        ("no_modality_embedding", "use_modality_embedding")]:
        model = create_model("test", num_classes=0, img_size=SIZE,
                             config_overrides=CKDA_ABLATIONS[flag].model_overrides())
        assert getattr(model.config, field) is False
    assert create_model("test", num_classes=0, img_size=SIZE, config_overrides=CKDA_ABLATIONS[
        "no_modality_embedding"].model_overrides()).modality_embed is None


# ---------------------------------------------------------------------------------------------- ablations
def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, *SIZE, generator=g)
    pid = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    zeros = torch.zeros(8, dtype=torch.long)
    return [x, pid, zeros, modality, zeros]


def _second_session_loss(method: CKDAConfig) -> tuple[float, CKDA]:
    """Total loss of one deterministic second-session step (teacher + prototypes installed by hand)."""
    torch.manual_seed(1)
    previous = create_model("test", num_classes=0, img_size=SIZE)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # BN_old with non-trivial running statistics (so train-mode BN would show)
        previous.head.bnneck.running_mean.copy_(0.5 * torch.randn(64, generator=g))
        previous.head.bnneck.running_var.copy_(0.5 + torch.rand(64, generator=g))
    torch.manual_seed(0)
    model = create_model("test", num_classes=2, img_size=SIZE)
    strategy = CKDA(model=model, method=method, config=_config(), device="cpu")
    if strategy.teacher is not None:
        strategy.teacher.refresh(previous)
    if strategy.cka is not None:
        g = torch.Generator().manual_seed(2)
        strategy.cka.history = [DualPrototypes(torch.randn(3, 64, generator=g), torch.arange(3),
                                               torch.randn(3, 64, generator=g), torch.arange(3))]
    strategy.mbatch = _batch()
    strategy.model.train()
    strategy.is_training = True
    torch.manual_seed(123)  # same dropout masks in every call
    strategy.loss = strategy._make_empty_loss()
    strategy.mb_output = strategy.forward()
    strategy.loss += strategy.criterion()
    strategy._before_backward()
    return float(strategy.loss.detach()), strategy


@pytest.fixture(scope="module")
def full_step():
    return _second_session_loss(CKDA_PAPER)


def test_full_loss_is_base_plus_weighted_terms(full_step):
    total, s = full_step
    crit = s._criterion.last_terms
    intra, inter = s.cka.last_terms
    expected = float(crit.total) + 1.0 * float(s.prompt_consistency.last_loss) + 0.5 * float(intra) + 0.5 * float(inter)
    assert float(s.prompt_consistency.last_loss) > 0 and float(intra) > 0 and float(inter) > 0
    assert total == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("flag", ["no_prompt_consistency", "inter_only", "intra_only", "no_cka", "no_centre",
                                  "finetune"])
def test_each_loss_ablation_removes_exactly_its_term(full_step, flag):
    total, s = full_step
    crit = s._criterion.last_terms
    intra, inter = (float(t) for t in s.cka.last_terms)
    removed = {
        "no_prompt_consistency": float(s.prompt_consistency.last_loss),
        "inter_only": 0.5 * intra,
        "intra_only": 0.5 * inter,
        "no_cka": 0.5 * intra + 0.5 * inter,
        "no_centre": 0.5 * float(crit.cent) + 0.5 * float(crit.cross),
        "finetune": total - float(crit.total),
    }[flag]
    ablated, _ = _second_session_loss(CKDA_ABLATIONS[flag])
    assert removed > 0
    assert total - ablated == pytest.approx(removed, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("reading", [{"sharp_affinity": True}, {"affinity_scale": 100.0},
                                     {"normalized_student": True}], ids=["s10", "s100", "normalized_student"])
def test_a_reading_of_cka_changes_nothing_once_cka_is_off(reading):
    """`ckda claims` lets ``ckda[no_cka]`` stand for ``ckda[no_cka+<reading>]``: the readings act on CKA alone, so
    with CKA off the plugins built and the loss of a step are exactly those of plain no_cka."""
    plain_total, plain = _second_session_loss(CKDA_ABLATIONS["no_cka"])
    read_total, read = _second_session_loss(dataclasses.replace(CKDA_ABLATIONS["no_cka"], **reading))
    assert read.cka is None and plain.cka is None
    assert [type(p) for p in read.plugins] == [type(p) for p in plain.plugins]
    assert read_total == plain_total


def _teacher_reference(strategy: CKDA) -> tuple[torch.Tensor, torch.Tensor]:
    """(f~, P~) of the frozen teacher, computed here: a fresh model with the teacher's weights in eval mode,
    f~ = L2norm(BN_old(f_old)) with BN_old's running statistics written out (docs/method.md §4.4)."""
    model = create_model("test", num_classes=0, img_size=SIZE)
    model.load_state_dict(strategy.teacher.model.state_dict())
    x, modality = strategy.mbatch[0], strategy.mbatch[3]
    return ref.bnneck_feature(model, x, modality), model.eval().forward_features(x, modality)[1].detach()


CKA_OPTIONS = [(), ("normalized_student",), ("sharp_affinity",), ("normalized_student", "sharp_affinity")]


@pytest.mark.parametrize("flags", CKA_OPTIONS, ids=["published", "normalized_student", "sharp_affinity", "both"])
def test_cka_and_prompt_terms_through_the_strategy_match_an_independent_computation(full_step, flags):
    """CKDAConfig flags -> CKDA -> CKAPlugin: the CKA terms equal the float64 reference of docs/method.md §4.4 with the
    student feature (pre-BN f, or L2norm(BN(f)) with `normalized_student`) and s (0.1, or 10 with `sharp_affinity`)
    the flags select; the total loss moves from the published one by exactly the change of the reference CKA."""
    total, strategy = _second_session_loss(CKDA_PAPER.with_flags(*flags))
    out = strategy.mb_output
    teacher_feature, teacher_prompt = _teacher_reference(strategy)
    protos = strategy.cka.history[0]

    def reference(normalized: bool, sharp: bool) -> tuple[float, float]:
        bn = out.bn_feat.detach().double()
        student = bn / bn.norm(dim=1, keepdim=True) if normalized else out.feat.detach()
        return ref.cka_terms(student, teacher_feature, out.modality, protos.visible, protos.infrared,
                             scale=10.0 if sharp else 0.1)

    intra, inter = reference("normalized_student" in flags, "sharp_affinity" in flags)
    got_intra, got_inter = (float(t) for t in strategy.cka.last_terms)
    # abs 3e-7: the float32 rounding of log A and log A~ (about -log 4) leaves ~1e-7 of noise in each KL, which at
    # the published s = 0.1 is ~0.3% of L_inter here (measured against this float64 reference)
    assert got_intra == pytest.approx(intra, rel=1e-4, abs=3e-7)
    assert got_inter == pytest.approx(inter, rel=1e-4, abs=3e-7)
    # L_p = mean |P - P~| (docs/method.md §4.4), also independent of the plugin
    expected_lp = float((out.prompt.detach() - teacher_prompt).abs().mean())
    assert float(strategy.prompt_consistency.last_loss) == pytest.approx(expected_lp, rel=1e-5)
    published_total, _ = full_step
    published = reference(False, False)
    assert total - published_total == pytest.approx(0.5 * (intra + inter) - 0.5 * sum(published), rel=1e-3, abs=3e-6)
    if flags:  # the option really changes the loss, by far more than the tolerance above
        assert abs(0.5 * (intra + inter) - 0.5 * sum(published)) > 1e-4


def test_no_merge_and_finetune_drop_the_merge_plugin():
    model = create_model("test", num_classes=0, img_size=SIZE)
    no_merge = CKDA(model=model, method=CKDA_ABLATIONS["no_merge"], config=_config(), device="cpu")
    assert no_merge.merge is None and no_merge.teacher is not None
    fine = CKDA(model=model, method=CKDA_ABLATIONS["finetune"], config=_config(), device="cpu")
    assert fine.merge is None and fine.teacher is None and fine.cka is None and fine.prompt_consistency is None


def test_orthogonality_option_adds_exactly_its_term(full_step):
    total, _ = full_step
    with_ortho, s = _second_session_loss(CKDA_PAPER.with_flags("orthogonality"))
    assert with_ortho - total == pytest.approx(float(s.orthogonality.last_loss), rel=1e-4, abs=1e-6)


# ---------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def synthetic_stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_small")
    generate_synthetic(root, seed=0, scale=0.5, img_size=E2E_SIZE)
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=E2E_SIZE)


class TeacherProbe(SupervisedPlugin):
    """Checks, at the end of every epoch of the second session, that the teacher has not moved and has no grads;
    keeps the teacher's weights at the start of the session and the student's trained weights after the last epoch
    (before the end-of-session merge), so the merge can be recomputed independently."""

    def __init__(self, teacher: TeacherPlugin):
        super().__init__()
        self.teacher, self.snapshot, self.checks, self.trained = teacher, None, 0, None

    def before_training_exp(self, strategy, **kw):
        if self.teacher.active:
            self.snapshot = {k: v.clone() for k, v in self.teacher.model.state_dict().items()}

    def after_training_epoch(self, strategy, **kw):
        self.trained = {k: v.detach().clone() for k, v in strategy.model.state_dict().items()}
        if self.snapshot is not None:
            assert all(torch.equal(self.snapshot[k], v) for k, v in self.teacher.model.state_dict().items())
            assert all(p.grad is None and not p.requires_grad for p in self.teacher.model.parameters())
            self.checks += 1


def _reference_prototypes(state: dict, experience) -> tuple[torch.Tensor, ...]:
    """Spec §5.2, computed here: a fresh model with ``state`` in eval mode over every training image of the session
    with the test transform; per identity and modality the mean of L2norm(BN(f))."""
    model = create_model("test", num_classes=0, img_size=E2E_SIZE)
    model.reset_classifier(int(state["head.classifier.weight"].shape[0]) if "head.classifier.weight" in state else 0)
    model.load_state_dict(state)
    info = experience.reid
    x = torch.stack([ref.eval_image(sample.path, E2E_SIZE) for sample in info.samples])
    modality = torch.tensor([sample.modality for sample in info.samples])
    feats = torch.cat([ref.bnneck_feature(model, x[i:i + 64], modality[i:i + 64]) for i in range(0, len(x), 64)])
    return ref.prototypes(feats, [info.to_label(sample.pid) for sample in info.samples], modality)


def _assert_prototypes(actual, expected) -> None:
    for a, e in zip(actual, expected):
        if e.is_floating_point():
            torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-4)
        else:
            assert a.tolist() == e.tolist()


def test_two_sessions_end_to_end(synthetic_stream):
    torch.manual_seed(0)
    model = create_model("test", num_classes=0, img_size=E2E_SIZE)
    strategy = CKDA(model=model, config=_config(lr=3e-3, num_identities=6, num_instances=4, epochs=E2E_EPOCHS),
                    device="cpu", evaluator=EvaluationPlugin(*reid_metrics(), loggers=[]))
    strategy.plugins.append(probe := TeacherProbe(strategy.teacher))
    untrained = strategy.eval(synthetic_stream.test_stream[:1])[MAP0]
    first = synthetic_stream.train_stream[0]
    strategy.train(first)
    after_first = strategy.eval(synthetic_stream.test_stream)
    assert after_first[MAP0] > untrained + 0.005  # measured: 0.114 -> ~0.14
    # first session: no merge; teacher and prototypes = the trained model
    assert strategy.merge.last_merged == []
    assert all(torch.equal(probe.trained[k], v) for k, v in strategy.model.state_dict().items())
    _assert_prototypes(strategy.cka.prototypes, _reference_prototypes(probe.trained, first))
    second = synthetic_stream.train_stream[1]
    strategy.train_epochs = 2
    strategy.train(second)
    metrics = strategy.eval(synthetic_stream.test_stream)
    assert probe.checks == 2  # the teacher was checked unchanged after every epoch of session 2
    assert strategy.prompt_consistency.last_loss is not None and strategy.cka.last_terms is not None
    # end of session 2: merged model (0.7 teacher + 0.3 trained, recomputed here) -> teacher -> prototypes
    merged = ref.merge(probe.snapshot, probe.trained, lam=0.7)
    for name, value in strategy.model.state_dict().items():
        torch.testing.assert_close(value, merged[name], rtol=1e-6, atol=1e-7, msg=name)
    assert not torch.allclose(strategy.model.modality_embed, probe.trained["modality_embed"])  # it did merge
    assert all(torch.equal(v, strategy.model.state_dict()[k]) for k, v in strategy.teacher.model.state_dict().items())
    _assert_prototypes(strategy.cka.prototypes, _reference_prototypes(merged, second))
    for key in ("mAP_Exp/eval_phase/test_stream/Exp001", "Rank1_Exp/eval_phase/test_stream/Exp000",
                "mAP_Stream/eval_phase/test_stream", "mINP_Exp/eval_phase/test_stream/Exp001"):
        assert 0.0 <= metrics[key] <= 1.0
    # checkpoint round trip: a fresh strategy continues with the same teacher and prototypes
    report = strategy.memory_report()
    assert report["TeacherPlugin/teacher"] > 0 and report["CKAPlugin/prototypes"] > 0
    restored = CKDA(model=create_model("test", num_classes=0, img_size=E2E_SIZE), config=_config(), device="cpu")
    with pytest.warns(UserWarning, match="ReIDRetrievalPluginMetric"):  # restored has no metrics
        restored.load_state_dict(copy.deepcopy(strategy.state_dict()), strict_metrics=False)
    assert all(torch.equal(a, b) for a, b in zip(restored.cka.prototypes, strategy.cka.prototypes))
    x = torch.randn(2, 3, *E2E_SIZE)
    modality = torch.tensor([0, 1])
    assert torch.allclose(restored.teacher.compute(x, modality).feature, strategy.teacher.compute(x, modality).feature)
    assert restored.merge.sessions_seen == 2


def test_plugins_inside_plain_naive(synthetic_stream):
    torch.manual_seed(0)
    total = sum(exp.reid.num_identities for exp in synthetic_stream.train_stream)
    model = create_model("test", num_classes=total, img_size=E2E_SIZE)  # Naive keeps one global classifier
    teacher = TeacherPlugin()
    pc = PromptConsistencyPlugin(teacher=teacher, alpha=1.0)
    cka = CKAPlugin(teacher=teacher)
    merge = WeightMergePlugin(lam=0.7, teacher=teacher)
    naive = Naive(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3), criterion=ReIDCriterion(),
                  train_mb_size=64, train_epochs=1, eval_mb_size=64, device="cpu",
                  plugins=[ReIDBatchPlugin(), merge, teacher, pc, cka],
                  evaluator=EvaluationPlugin(*reid_metrics(), loggers=[]))
    for exp in synthetic_stream.train_stream:
        naive.train(exp)
    metrics = naive.eval(synthetic_stream.test_stream)
    assert teacher.active and cka.prototypes is not None and merge.sessions_seen == 2
    assert pc.last_loss is not None and cka.last_terms is not None  # both terms ran in session 2
    assert 0.0 <= metrics["mAP_Stream/eval_phase/test_stream"] <= 1.0
    assert model.batch_modality is None
