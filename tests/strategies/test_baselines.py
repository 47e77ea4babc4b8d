"""Two-session tiny runs of every baseline on the synthetic VI-LReID stream (RegDB -> SYSU-MM01 layouts, 4 identities
each, 64x32 images, the ``test`` model preset): each trains, emits retrieval metrics and reports its memory; plus the
key end-of-session mechanism of each method on the real strategy."""
from __future__ import annotations

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.evaluation import reid_metrics
from ckda_avalanche.models import create_model
from ckda_avalanche.strategies.config import TrainConfig
from ckda_avalanche.strategies.dkp import DKP
from ckda_avalanche.strategies.ewc import EWC, EWCConfig
from ckda_avalanche.strategies.finetune import FineTune
from ckda_avalanche.strategies.joint import Joint, JointConfig
from ckda_avalanche.strategies.l2p import L2P, L2PConfig
from ckda_avalanche.strategies.lstkc import LSTKC
from ckda_avalanche.strategies.lwf import LwF, LwFConfig
from ckda_avalanche.strategies.replay import Replay, ReplayConfig

PLAIN = {"use_msp": False, "use_mcp": False}
"""The baselines' default model: the ViT without CKDA's pixel prompters (written out here, not taken from the code)."""
TRAIN = TrainConfig(epochs=1, num_identities=2, num_instances=2, warmup_epochs=0, amp="off")
IMAGE_BYTES = 3 * 64 * 32


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(root, seed=0, scale=0.125, img_size=(64, 32))
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=(64, 32))


def _build(name: str, **extra):
    torch.manual_seed(0)
    kw = dict(model=create_model("test", config_overrides=PLAIN), config=TRAIN, device="cpu", eval_mb_size=64,
              evaluator=EvaluationPlugin(*reid_metrics(ranks=(1,), minp=False, forgetting=False), loggers=[]), **extra)
    factories = {
        "lwf": lambda: LwF(**kw),
        "lwf_logits": lambda: LwF(method=LwFConfig(mode="logits"), **kw),
        "ewc": lambda: EWC(method=EWCConfig(fisher_max_batches=2), **kw),
        "lstkc": lambda: LSTKC(**kw),
        "dkp": lambda: DKP(**kw),
        "replay": lambda: Replay(method=ReplayConfig(memory_size=8, images_per_identity=2), **kw),
        "joint": lambda: Joint(**kw),
        "joint_reinit": lambda: Joint(method=JointConfig(reinitialise=True), **kw),
        "l2p": lambda: L2P(method=L2PConfig(pool_size=4, prompt_length=2, top_n=2), **kw),
    }
    return factories[name]()


class _Probe(SupervisedPlugin):
    """Records, per session: classifier width, training identities, a weight and the label offset at the start;
    the method plugin's last loss term at the end, and the strategy state after the first session."""

    def __init__(self, plugin_attr: str | None):
        super().__init__()
        self.plugin_attr = plugin_attr
        self.start = []
        self.end = []
        self.batches = []

    def before_training_epoch(self, strategy, **kwargs):
        model = strategy.model
        weight = model.state_dict()["head.bnneck.weight"].clone() if hasattr(model, "head") else None
        self.start.append((model.num_classes, sorted(set(strategy.adapted_dataset.targets)), weight,
                           strategy.label_offset))
        self.batches.append(len(strategy.dataloader))

    def after_training_exp(self, strategy, **kwargs):
        plugin = getattr(strategy, self.plugin_attr) if self.plugin_attr else None
        term = getattr(plugin, "last_term", getattr(plugin, "last_pull", None))
        self.end.append({"term": term, "state": None})

    def after_training(self, strategy, **kwargs):
        if self.end[0]["state"] is None:  # the state the runner checkpoints after the first session
            self.end[0]["state"] = strategy.state_dict()


PLUGIN_ATTR = {"lwf": "lwf", "lwf_logits": "lwf", "ewc": "ewc", "lstkc": "lstkc", "dkp": "dkp", "replay": "replay",
               "joint": None, "joint_reinit": None, "l2p": "l2p"}


@pytest.fixture(scope="module")
def runs(stream):
    """Each baseline trained over the two sessions once (lazily), with its probe and final metrics."""
    cache = {}

    def get(name):
        if name not in cache:
            probe = _Probe(PLUGIN_ATTR[name])
            strategy = _build(name, plugins=[probe])
            initial = {k: v.clone() for k, v in strategy.model.state_dict().items()}
            results = None
            for exp in stream.train_stream:
                strategy.train(exp)
                results = strategy.eval(stream.test_stream[: exp.current_experience + 1])
            cache[name] = (strategy, probe, results, initial)
        return cache[name]

    return get


EXPECTED_MEMORY = {
    "lwf": {"ReIDLwFPlugin/parameters"},
    "lwf_logits": {"ReIDLwFPlugin/parameters"},
    "ewc": {"ReIDEWCPlugin/parameters", "ReIDEWCPlugin/importances"},
    "lstkc": {"LSTKCPlugin/parameters"},
    "dkp": {"DKPPlugin/prototypes", "WeightMergePlugin/previous_weights"},
    "replay": {"ReIDReplayPlugin/exemplar_images"},
    "joint": {"Joint/initial_weights", "Joint/exemplar_images"},
    "joint_reinit": {"Joint/initial_weights", "Joint/exemplar_images"},
    "l2p": set(),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_MEMORY))
def test_two_sessions_train_and_emit_metrics(name, runs):
    strategy, probe, results, _ = runs(name)
    for exp in (0, 1):
        value = results[f"mAP_Exp/eval_phase/test_stream/Exp00{exp}"]
        assert 0.0 < value <= 1.0 and math.isfinite(value)
    assert 0.0 < results["mAP_Stream/eval_phase/test_stream"] <= 1.0
    report = strategy.memory_report()
    assert set(report) == {"strategy/model"} | EXPECTED_MEMORY[name]
    assert all(isinstance(v, int) and v >= 0 for v in report.values())
    assert strategy.sessions_trained == 2


@pytest.mark.parametrize("name", ["lwf", "lwf_logits", "lstkc", "dkp"])
def test_distillation_starts_in_the_second_session(name, runs):
    _, probe, _, _ = runs(name)
    assert probe.end[0]["term"] == 0.0 and probe.end[1]["term"] > 0.0


def test_lstkc_fuses_and_keeps_the_fused_model(runs):
    strategy, _, _, _ = runs("lstkc")
    plugin = strategy.lstkc
    assert len(plugin.fusion_weights) == 1 and 0.0 <= plugin.fusion_weights[0] <= 1.0
    live = strategy.model.state_dict()
    for key, value in plugin.old.model.state_dict().items():
        if "classifier" not in key:
            assert torch.equal(value, live[key]), key


def test_dkp_prototypes_and_fusion(runs, stream):
    strategy, _, _, _ = runs("dkp")
    protos = strategy.dkp.prototypes
    first, n = stream.train_stream[1].reid.label_offset, stream.train_stream[1].reid.num_identities
    assert protos.labels.tolist() == list(range(first, first + n))  # only the last session's, one per identity
    assert protos.modality.tolist() == [-1] * n and bool((protos.std > 0).any())
    assert len(strategy.merge.last_merged) > 0
    assert strategy.memory_report()["DKPPlugin/prototypes"] == protos.num_bytes()


def test_ewc_keeps_one_fisher_per_session(runs):
    strategy, _, _, _ = runs("ewc")
    fishers = strategy.ewc.fishers
    assert len(fishers) == 2 and len(strategy.ewc.anchors) == 2
    assert all(sum(float(f.sum()) for f in fisher.values()) > 0 for fisher in fishers)
    assert not any(k.startswith("head.classifier") for k in fishers[0])


def test_replay_classifier_spans_old_and_new_identities(runs, stream):
    strategy, probe, _, _ = runs("replay")
    n0 = stream.train_stream[0].reid.num_identities
    n1 = stream.train_stream[1].reid.num_identities
    (c0, ids0, _, off0), (c1, ids1, _, off1) = probe.start
    assert (c0, off0, c1, off1) == (n0, 0, n0 + n1, 0)
    # after session 0 the whole budget (8 images, 2 per identity) went to session 0; it was replayed in session 1
    memory0 = probe.end[0]["state"]["plugins"]["ReIDReplayPlugin"]["memory"][0]
    assert sum(len(i) for _, i in memory0) == 8
    assert set(ids1) == {p for p, _ in memory0} | set(range(n0, n0 + n1))
    # then the budget is shared by the two sessions
    assert [len(v) for _, v in sorted(strategy.replay.memory.items())] == [2, 2]
    assert strategy.replay.exemplar_count == 8
    assert strategy.memory_report()["ReIDReplayPlugin/exemplar_images"] == 8 * IMAGE_BYTES


def test_joint_reinitialises_and_trains_on_the_union(runs, stream):
    strategy, probe, _, initial = runs("joint_reinit")
    n = stream.train_stream[0].reid.num_identities + stream.train_stream[1].reid.num_identities
    (_, _, w0, _), (c1, ids1, w1, _) = probe.start
    assert c1 == n and ids1 == list(range(n))
    assert torch.equal(w0, initial["head.bnneck.weight"]) and torch.equal(w1, initial["head.bnneck.weight"])
    assert not torch.equal(strategy.model.state_dict()["head.bnneck.weight"], initial["head.bnneck.weight"])
    assert strategy.memory_report()["Joint/initial_weights"] > 0


def test_joint_continues_from_the_previous_session_on_the_union_as_the_upper_bound(runs, stream):
    strategy, probe, _, initial = runs("joint")
    n = stream.train_stream[0].reid.num_identities + stream.train_stream[1].reid.num_identities
    (_, _, w0, _), (c1, ids1, w1, _) = probe.start
    assert c1 == n and ids1 == list(range(n))
    assert torch.equal(w0, initial["head.bnneck.weight"]) and not torch.equal(w1, initial["head.bnneck.weight"])
    assert strategy.memory_report()["Joint/initial_weights"] == 0
    # the upper bound on its own definition: even with equal iterations, an epoch passes over the whole union
    assert TRAIN.equal_iterations and strategy.upper_bound
    assert probe.batches[1] == math.ceil(n / min(TRAIN.num_identities, n))


@pytest.mark.parametrize("strategy_cls", [FineTune, Joint, LwF, EWC, Replay, L2P, LSTKC, DKP])
def test_baselines_need_a_model_without_pixel_prompts_by_default(strategy_cls):
    with pytest.raises(ValueError, match=rf"{strategy_cls.__name__}: .*use_msp=True \(needs False\).*pixel_prompts"):
        strategy_cls(model=create_model("test"), config=TRAIN, device="cpu")


@pytest.mark.parametrize("strategy_cls", [FineTune, Joint, LwF, EWC, Replay, LSTKC, DKP])
def test_baselines_keep_the_pixel_prompters_when_asked(strategy_cls):
    method = type(strategy_cls.default_method)(pixel_prompts=True)
    strategy = strategy_cls(model=create_model("test"), method=method, config=TRAIN, device="cpu")
    names = [n for n, _ in strategy.model.named_parameters()]
    assert any(n.startswith("prompter.msp.") for n in names) and any(n.startswith("prompter.mcp.") for n in names)
    with pytest.raises(ValueError, match=r"use_msp=False \(needs True\)"):
        strategy_cls(model=create_model("test", config_overrides=PLAIN), method=method, config=TRAIN, device="cpu")


def test_l2p_trains_pool_and_head_only(runs):
    strategy, probe, _, initial = runs("l2p")
    live = strategy.model.state_dict()
    qkv = "base.backbone.blocks.0.attn.qkv.weight"
    assert torch.equal(live[qkv], initial[qkv])
    assert not torch.equal(live["pool.keys"], initial["pool.keys"])
    assert not torch.equal(live["base.head.bnneck.weight"], initial["base.head.bnneck.weight"])
    assert probe.end[0]["term"] > 0.0


@pytest.mark.parametrize("name", ["lstkc", "dkp", "ewc", "replay"])
def test_state_dict_round_trip_after_first_session(name, runs, stream):
    _, probe, _, _ = runs(name)
    state = probe.end[0]["state"]
    restored = _build(name)
    restored.load_state_dict(state)
    assert restored.sessions_trained == 1
    restored.train(stream.train_stream[1])  # the restored old model / prototypes / exemplars are usable
    assert restored.sessions_trained == 2
