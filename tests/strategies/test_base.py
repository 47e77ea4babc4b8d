"""ReIDTemplate mechanics: config validation, schedule, optimiser groups, classifier / label handling, finite-loss
check, AMP policy, state round trip. Tiny synthetic data (2 identities per dataset) and the `test` model preset."""
import math

import pytest
import torch

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.models import create_model
from ckda_avalanche.strategies import ReIDTemplate, TrainConfig
from ckda_avalanche.strategies.optim import build_optimizer, rebuild_optimizer, warmup_cosine_factor
from ckda_avalanche.strategies.precision import resolve_amp_dtype
from avalanche.core import SupervisedPlugin

SIZE = (32, 16)

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_tiny")
    generate_synthetic(root, seed=0, scale=0.05, img_size=SIZE)
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=SIZE)


def _config(**kw):
    base = dict(lr=1e-3, epochs=1, num_identities=2, num_instances=2, amp="off", warmup_epochs=0)
    base.update(kw)
    return TrainConfig(**base)


def test_train_config_defaults_and_validation():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.backbone_lr_mult, cfg.warmup_epochs, cfg.epochs) == (3e-4, 1e-4, 0.5, 3, 50)
    assert cfg.train_mb_size == 64
    with pytest.raises(ValueError, match="TrainConfig.amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="TrainConfig.lr"):
        TrainConfig(lr=0.0)


def test_train_config_num_workers():
    assert TrainConfig().num_workers == "auto"
    assert TrainConfig(num_workers=0).num_workers == 0 and TrainConfig(num_workers=3).num_workers == 3
    for bad in (-1, "many", 1.5, True):
        with pytest.raises(ValueError, match="TrainConfig.num_workers"):
            TrainConfig(num_workers=bad)


def test_warmup_cosine_factor_hand_values():
    kw = dict(total_steps=11, warmup_steps=2, start_factor=0.01, min_factor=0.01)
    assert warmup_cosine_factor(0, **kw) == pytest.approx(0.01)
    assert warmup_cosine_factor(1, **kw) == pytest.approx(0.505)  # halfway through warm-up
    assert warmup_cosine_factor(2, **kw) == pytest.approx(1.0)  # peak right after warm-up
    # decay over steps 2..10 (8 steps): at step 6 progress 0.5 -> 0.01 + 0.99 * 0.5
    assert warmup_cosine_factor(6, **kw) == pytest.approx(0.505)
    assert warmup_cosine_factor(10, **kw) == pytest.approx(0.01)  # floor at the last step
    assert warmup_cosine_factor(50, **kw) == pytest.approx(0.01)


def test_optimizer_groups_use_backbone_multiplier():
    model = create_model("test", num_classes=3, img_size=SIZE)
    opt = build_optimizer(model, TrainConfig(lr=1e-3))
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["patch_embed_and_blocks"]["lr"] == pytest.approx(5e-4)
    assert groups["other"]["lr"] == pytest.approx(1e-3)
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.backbone.patch_embed.proj.weight) in {id(p) for p in groups["patch_embed_and_blocks"]["params"]}
    assert id(model.head.classifier.weight) in ids
    assert all(p.requires_grad for g in opt.param_groups for p in g["params"])
    sgd = rebuild_optimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model, TrainConfig())
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert {g["lr"] for g in sgd.param_groups} == {0.1, 0.05}


def test_amp_policy():
    cpu = torch.device("cpu")
    assert resolve_amp_dtype("off", cpu) is None
    assert resolve_amp_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="CUDA"):
        resolve_amp_dtype("fp16", cpu)


class Recorder(SupervisedPlugin):
    """Records what the strategy does at each step."""

    def __init__(self):
        super().__init__()
        self.classes, self.local_labels, self.lrs, self.batches, self.optimizers = [], [], [], [], []

    def before_training_exp(self, strategy, **kw):
        self.classes.append(strategy.model.num_classes)

    def before_backward(self, strategy, **kw):
        self.local_labels.append(strategy.mb_local_y.clone())
        self.batches.append(strategy.mbatch[3].clone())
        self.optimizers.append(strategy.optimizer)

    def before_update(self, strategy, **kw):  # the lr this step uses
        self.lrs.append([g["lr"] for g in strategy.optimizer.param_groups])


def test_two_sessions_classifier_labels_optimizer_and_state(stream):
    torch.manual_seed(0)
    model = create_model("test", num_classes=0, img_size=SIZE)
    rec = Recorder()
    strategy = ReIDTemplate(model=model, config=_config(epochs=2), device="cpu", plugins=[rec])
    assert strategy.train_mb_size == 8 and strategy.train_epochs == 2
    for exp in stream.train_stream:
        strategy.train(exp)
        strategy.eval(stream.test_stream)  # eval experiences must not touch the classifier
        assert model.num_classes == exp.reid.num_identities
    assert rec.classes == [stream.train_stream[0].reid.num_identities, stream.train_stream[1].reid.num_identities]
    assert stream.train_stream[1].reid.label_offset > 0
    for labels in rec.local_labels:  # labels are session-local
        assert int(labels.min()) >= 0 and int(labels.max()) < max(rec.classes)
    for modality in rec.batches:  # identity-balanced cross-modality batches: first half visible, second infrared
        assert modality.tolist() == [0] * (len(modality) // 2) + [1] * (len(modality) // 2)
    assert rec.optimizers[0] is not rec.optimizers[-1]  # a new optimiser per session
    assert strategy.sessions_trained == 2
    # cosine schedule within a session: the last step of a session has a lower lr than the first
    per_session = len(rec.lrs) // 2
    assert rec.lrs[0][1] == pytest.approx(1e-3 * 1.0)  # no warm-up in this config: peak lr at the first step
    assert rec.lrs[per_session - 1][1] == pytest.approx(1e-3 * 0.01)  # floor at the last step
    assert rec.lrs[0][0] == pytest.approx(0.5e-3)  # backbone group
    state = strategy.state_dict()
    other = ReIDTemplate(model=create_model("test", num_classes=0, img_size=SIZE), config=_config(), device="cpu",
                         plugins=[Recorder()])
    other.load_state_dict(state)
    assert other.sessions_trained == 2 and other.model.num_classes == model.num_classes
    assert all(torch.equal(a, b) for a, b in zip(other.model.state_dict().values(), model.state_dict().values()))
    report = strategy.memory_report()
    assert report["strategy/model"] == sum(t.numel() * t.element_size() for t in model.state_dict().values())


class Explode(SupervisedPlugin):
    def before_backward(self, strategy, **kw):
        if strategy.clock.train_epoch_iterations == 1:
            strategy.loss = strategy.loss + float("nan")


def test_non_finite_loss_names_session_and_iteration(stream):
    model = create_model("test", num_classes=0, img_size=SIZE)
    strategy = ReIDTemplate(model=model, config=_config(num_identities=1), device="cpu", plugins=[Explode()])
    # 1-based like the CSV's train_exp: the first session's second iteration (clock counter 1) of its first epoch
    with pytest.raises(FloatingPointError, match=r"session 1 \(regdb\), epoch 1/1, iteration 2"):
        strategy.train(stream.train_stream[0])


def test_eval_criterion_is_zero_and_features_are_float(stream):
    model = create_model("test", num_classes=0, img_size=SIZE)
    strategy = ReIDTemplate(model=model, config=_config(amp="bf16"), device="cpu")
    seen = []

    class Probe(SupervisedPlugin):
        def after_eval_iteration(self, s, **kw):
            seen.append((s.mb_output.dtype, float(s.loss)))

    strategy.plugins.append(Probe())
    strategy.eval(stream.test_stream[:1])
    assert seen and all(dtype == torch.float32 and loss == 0.0 for dtype, loss in seen)
    assert not math.isnan(seen[0][1])


def test_results_do_not_depend_on_the_image_cache_or_the_workers(tmp_path_factory):
    """Two sessions of CKDA (training, evaluation, prototype pass) from the memory cache in the main process and from
    disk with one DataLoader worker give identical weights, prototypes and evaluation features."""
    from ckda_avalanche.strategies import CKDA

    root = tmp_path_factory.mktemp("synthetic_parity")
    generate_synthetic(root, seed=0, scale=0.05, img_size=SIZE)
    runs = []
    for cache, workers in (("memory", 0), ("off", 1)):
        bm = vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=SIZE, cache=cache)
        assert set(bm.reid_image_sources.values()) == {"memory" if cache == "memory" else "file"}
        torch.manual_seed(0)
        model = create_model("test", num_classes=0, img_size=SIZE)
        features, workers_seen = [], set()

        class Probe(SupervisedPlugin):
            def after_eval_iteration(self, s, **kw):
                features.append(s.mb_output.detach().clone())
                workers_seen.add(s.dataloader.num_workers)

            def before_training_iteration(self, s, **kw):
                workers_seen.add(s.dataloader.num_workers)

        strategy = CKDA(model=model, config=_config(num_workers=workers), device="cpu", plugins=[Probe()])
        for exp in bm.train_stream:
            torch.manual_seed(exp.current_experience + 1)
            strategy.train(exp)
            strategy.eval(bm.test_stream)
        assert workers_seen == {workers}
        runs.append((model.state_dict(), strategy.cka.history[-1], torch.cat(features)))
    (state_a, protos_a, feats_a), (state_b, protos_b, feats_b) = runs
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert all(torch.equal(a, b) for a, b in zip(protos_a, protos_b))
    assert torch.equal(feats_a, feats_b)
