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
from ckda_avalanche.plugins.dkp import DKPConfig
from ckda_avalanche.plugins.ewc import EWCConfig
from ckda_avalanche.plugins.l2p import L2PConfig
from ckda_avalanche.plugins.lwf import LwFConfig
from ckda_avalanche.plugins.replay import ReplayConfig
from ckda_avalanche.strategies.config import TrainConfig
from ckda_avalanche.strategies.dkp import DKP
from ckda_avalanche.strategies.ewc import EWC
from ckda_avalanche.strategies.joint import Joint
from ckda_avalanche.strategies.l2p import L2P
from ckda_avalanche.strategies.lstkc import LSTKC
from ckda_avalanche.strategies.lwf import LwF
from ckda_avalanche.strategies.replay import Replay

TRAIN = TrainConfig(epochs=1, num_identities=2, num_instances=2, warmup_epochs=0, amp="off")
IMAGE_BYTES = 3 * 64 * 32


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(root, seed=0, scale=0.125, img_size=(64, 32))
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=(64, 32))


def _build(name: str, **extra):
    torch.manual_seed(0)
    kw = dict(model=create_model("test"), config=TRAIN, device="cpu", eval_mb_size=32,
              evaluator=EvaluationPlugin(*reid_metrics(ranks=(1,), minp=False, forgetting=False), loggers=[]), **extra)
    factories = {
        "lwf": lambda: LwF(**kw),
        "lwf_logits": lambda: LwF(method=LwFConfig(mode="logits"), **kw),
        "ewc": lambda: EWC(method=EWCConfig(fisher_max_batches=2), **kw),
        "lstkc": lambda: LSTKC(**kw),
        "dkp": lambda: DKP(**kw),
        "replay": lambda: Replay(method=ReplayConfig(memory_size=8, images_per_identity=2), **kw),
        "joint": lambda: Joint(**kw),
        "l2p": lambda: L2P(method=L2PConfig(pool_size=4, prompt_length=2, top_n=2), **kw),
    }
    return factories[name]()


def _run(strategy, stream):
    results = None
    for exp in stream.train_stream:
        strategy.train(exp)
        results = strategy.eval(stream.test_stream[: exp.current_experience + 1])
    return results


EXPECTED_MEMORY = {
    "lwf": {"ReIDLwFPlugin/parameters"},
    "lwf_logits": {"ReIDLwFPlugin/parameters"},
    "ewc": {"ReIDEWCPlugin/parameters", "ReIDEWCPlugin/importances"},
    "lstkc": {"LSTKCPlugin/parameters"},
    "dkp": {"DKPPlugin/prototypes", "WeightMergePlugin/previous_weights"},
    "replay": {"ReIDReplayPlugin/exemplar_images"},
    "joint": {"Joint/initial_weights", "Joint/exemplar_images"},
    "l2p": set(),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_MEMORY))
def test_two_sessions_train_and_emit_metrics(name, stream):
    strategy = _build(name)
    results = _run(strategy, stream)
    for exp in (0, 1):
        value = results[f"mAP_Exp/eval_phase/test_stream/Exp00{exp}"]
        assert 0.0 < value <= 1.0 and math.isfinite(value)
    assert 0.0 < results["mAP_Stream/eval_phase/test_stream"] <= 1.0
    report = strategy.memory_report()
    assert set(report) == {"strategy/model"} | EXPECTED_MEMORY[name]
    assert all(isinstance(v, int) and v >= 0 for v in report.values())
    assert strategy.sessions_trained == 2


def test_lwf_and_lstkc_distil_from_the_second_session(stream):
    for name in ("lwf", "lstkc"):
        strategy = _build(name)
        plugin = strategy.lwf if name == "lwf" else strategy.lstkc
        strategy.train(stream.train_stream[0])
        assert plugin.last_term == 0.0 and plugin.old.present
        strategy.train(stream.train_stream[1])
        assert plugin.last_term > 0.0
    # LSTKC fused once, with a weight in [0, 1], and its old model is the fused model
    assert len(plugin.fusion_weights) == 1 and 0.0 <= plugin.fusion_weights[0] <= 1.0
    live = strategy.model.state_dict()
    for key, value in plugin.old.model.state_dict().items():
        if "classifier" not in key:
            assert torch.equal(value, live[key]), key


def test_dkp_prototypes_and_fusion(stream):
    strategy = _build("dkp", )
    strategy.train(stream.train_stream[0])
    protos = strategy.dkp.prototypes
    assert protos.labels.tolist() == list(range(stream.train_stream[0].reid.num_identities))
    assert torch.allclose(protos.mean.norm(dim=1), protos.mean.norm(dim=1))  # finite
    assert bool((protos.std > 0).any())
    assert strategy.dkp.last_term == 0.0 and strategy.merge.last_merged == []
    strategy.train(stream.train_stream[1])
    assert strategy.dkp.last_term > 0.0 and len(strategy.merge.last_merged) > 0
    assert strategy.dkp.prototypes.labels.min() == stream.train_stream[1].reid.label_offset  # only the last session
    per_mod = _build("dkp")
    per_mod.dkp.config = DKPConfig(per_modality=True)
    per_mod.train(stream.train_stream[0])
    assert set(per_mod.dkp.prototypes.modality.tolist()) == {0, 1}


def test_ewc_penalty_pulls_towards_anchor(stream):
    strategy = _build("ewc")
    strategy.train(stream.train_stream[0])
    plugin = strategy.ewc
    assert len(plugin.fishers) == 1
    assert sum(float(f.sum()) for f in plugin.fishers[0].values()) > 0
    assert not any(k.startswith("head.classifier") for k in plugin.fishers[0])
    anchors = {k: v.clone() for k, v in plugin.anchors[0].items()}
    strategy.train(stream.train_stream[1])
    assert len(plugin.fishers) == 2  # separate mode: one penalty per session
    assert torch.equal(plugin.anchors[0]["modality_embed"], anchors["modality_embed"])
    online = _build("ewc")
    online.ewc.config = EWCConfig(mode="online", fisher_max_batches=1)
    _run(online, stream)
    assert len(online.ewc.fishers) == 1


class _SessionProbe(SupervisedPlugin):
    """Records the classifier width, the training-set identities and a weight at the start of every session."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def before_training_epoch(self, strategy, **kwargs):
        self.seen.append((strategy.model.num_classes, sorted(set(strategy.adapted_dataset.targets)),
                          strategy.model.state_dict()["head.bnneck.weight"].clone() if hasattr(strategy.model, "head")
                          else None, strategy.label_offset))


def test_replay_and_joint_classifier_spans_all_seen_identities(stream):
    n0 = stream.train_stream[0].reid.num_identities
    n1 = stream.train_stream[1].reid.num_identities
    probe = _SessionProbe()
    replay = _build("replay", plugins=[probe])
    _run(replay, stream)
    (c0, ids0, _, off0), (c1, ids1, _, off1) = probe.seen
    assert (c0, off0, c1, off1) == (n0, 0, n0 + n1, 0)
    exemplar_ids = {p for p, _ in replay.replay.memory[0]}
    assert set(ids1) == exemplar_ids | set(range(n0, n0 + n1))  # old exemplars replayed with their own labels
    assert replay.replay.exemplar_count == 8  # memory_size respected, shared by the two sessions
    assert replay.memory_report()["ReIDReplayPlugin/exemplar_images"] == 8 * IMAGE_BYTES

    probe = _SessionProbe()
    joint = _build("joint", plugins=[probe])
    initial = joint.model.state_dict()["head.bnneck.weight"].clone()
    _run(joint, stream)
    (c0, ids0, w0, _), (c1, ids1, w1, _) = probe.seen
    assert c1 == n0 + n1 and ids1 == list(range(n0 + n1))
    assert torch.equal(w0, initial) and torch.equal(w1, initial)  # re-initialised every session
    assert not torch.equal(joint.model.state_dict()["head.bnneck.weight"], initial)


def test_l2p_trains_pool_and_head_only(stream):
    strategy = _build("l2p")
    block = strategy.model.base.backbone.blocks[0].attn.qkv.weight.detach().clone()
    keys = strategy.model.pool.keys.detach().clone()
    strategy.train(stream.train_stream[0])
    assert torch.equal(strategy.model.base.backbone.blocks[0].attn.qkv.weight, block)
    assert not torch.equal(strategy.model.pool.keys, keys)
    assert strategy.l2p.last_pull > 0.0


@pytest.mark.parametrize("name", ["lwf", "lstkc", "dkp", "ewc", "replay"])
def test_state_dict_round_trip_after_first_session(name, stream):
    strategy = _build(name)
    strategy.train(stream.train_stream[0])
    state = strategy.state_dict()
    restored = _build(name)
    restored.load_state_dict(state)
    assert restored.memory_report() == strategy.memory_report()
    restored.train(stream.train_stream[1])  # the restored old model / prototypes / exemplars are usable
    assert restored.sessions_trained == 2
