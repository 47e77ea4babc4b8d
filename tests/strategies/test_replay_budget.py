"""Equal optimiser-step budgets: Replay trains exactly fine-tuning's steps per session and mixes memory samples into
each batch (Avalanche's ReplayPlugin convention: more samples per step, not more steps); Joint, the upper bound,
passes over its whole union. Three-session tiny runs (RegDB -> SYSU-MM01 -> LLCM layouts), ``test`` model."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from avalanche.core import SupervisedPlugin

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins.replay import (
    PUBLISHED_MEAN_SHARE,
    benchmark_memory_identities,
    mean_old_share,
)
from ckda_avalanche.runner.config import CPU
from ckda_avalanche.strategies.finetune import FineTune
from ckda_avalanche.strategies.joint import Joint
from ckda_avalanche.strategies.replay import Replay, ReplayConfig

pytestmark = pytest.mark.usefixtures("one_thread")

PLAIN = {"use_msp": False, "use_mcp": False}
DATASETS = ("regdb", "sysu", "llcm")


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(root, seed=0, scale=0.125, img_size=(64, 32))
    return vi_lreid_benchmark(root, datasets=DATASETS, img_size=(64, 32))


class _Batches(SupervisedPlugin):
    """Records, per session, the steps taken and the pids of every training batch."""

    def __init__(self):
        super().__init__()
        self.pids: list[list[list[int]]] = []
        self.steps: list[int] = []

    def before_training_exp(self, strategy, **kwargs):
        self.pids.append([])

    def after_training_iteration(self, strategy, **kwargs):
        self.pids[-1].append(strategy.mb_y.tolist())

    def after_training_exp(self, strategy, **kwargs):
        self.steps.append(strategy.train_steps)


def _train(cls, stream, **method):
    # the cpu preset's budget settings (equal_iterations and epoch length), at test size
    config = dataclasses.replace(CPU.train, epochs=2, warmup_epochs=0, num_identities=2, num_instances=2)
    probe = _Batches()
    torch.manual_seed(0)
    strategy = cls(model=create_model("test", config_overrides=PLAIN), config=config, device="cpu",
                   plugins=[probe], **method)
    for experience in stream.train_stream:
        strategy.train(experience)
    return probe, strategy


@pytest.fixture(scope="module")
def runs(stream):
    return {"finetune": _train(FineTune, stream),
            "replay": _train(Replay, stream, method=ReplayConfig(memory_size=8, images_per_identity=2)),
            "joint": _train(Joint, stream)}


def test_replay_takes_finetunings_optimiser_steps_every_session(runs, stream):
    finetune, _ = runs["finetune"]
    replay, _ = runs["replay"]
    identities = [int(e.reid.num_identities) for e in stream.train_stream]
    # hand count: 2 epochs of ceil(identities / P) batches (P = 2), one optimiser step per batch
    expected = [2 * math.ceil(n / 2) for n in identities]
    assert finetune.steps == expected
    assert replay.steps == expected


def test_replay_batches_hold_the_current_batch_plus_memory_identities(runs, stream):
    finetune, _ = runs["finetune"]
    replay, strategy = runs["replay"]
    offsets = [int(e.reid.label_offset) for e in stream.train_stream]
    assert all(len(batch) == 8 for batch in replay.pids[0])  # session 1: no memory, fine-tuning's batch
    assert replay.pids[0] == finetune.pids[0]
    for session in (1, 2):
        for new_batch, batch in zip(finetune.pids[session], replay.pids[session]):
            assert len(batch) == 16  # 2 x (2 current + 2 memory identities) x 2 images
            old = [p for p in batch if p < offsets[session]]
            assert len(old) == 8  # every batch carries memory samples
            # the current part is fine-tuning's batch (same sampler seed and length)
            assert sorted(p for p in batch if p >= offsets[session]) == sorted(new_batch)
            # cross-modality layout: batch[j] and batch[half + j] share an identity
            assert batch[:8] == batch[8:]


def test_joint_the_upper_bound_passes_over_its_whole_union(runs, stream):
    joint, strategy = runs["joint"]
    identities = [int(e.reid.num_identities) for e in stream.train_stream]
    union = [sum(identities[: s + 1]) for s in range(len(identities))]
    assert joint.steps == [2 * math.ceil(n / 2) for n in union]
    assert strategy.upper_bound


def test_the_memory_is_sized_by_the_published_share_of_old_identities():
    # published: 500 identities on RegDB 206 -> SYSU 395 -> LLCM 713 -> VCM: min(1, 500/206), 500/601, 500/1314
    share = (1 + 500 / 601 + 500 / 1314) / 3
    assert PUBLISHED_MEAN_SHARE == pytest.approx(share)
    assert benchmark_memory_identities((206, 395, 713, 500)) == 500
    # synthetic stream, 64 identities a session: (1 + M/128 + M/192) / 3 >= share  ->  M = ceil(...) by hand
    needed = math.ceil((3 * share - 1) / (1 / 128 + 1 / 192))
    assert benchmark_memory_identities((64, 64, 64, 64)) == needed == 94
    assert mean_old_share(needed - 1, (64, 64, 64, 64)) < share


def test_the_earlier_budget_stays_one_configuration_away(stream):
    # equal_iterations=False + mix_into_batch=False: the memory is concatenated to the session's data and an epoch
    # passes over both: ceil((8 new + 4 remembered identities) / 2) batches from session 2 on
    from ckda_avalanche.strategies.config import TrainConfig

    config = TrainConfig(epochs=2, warmup_epochs=0, num_identities=2, num_instances=2, amp="off",
                         equal_iterations=False)
    probe = _Batches()
    torch.manual_seed(0)
    strategy = Replay(model=create_model("test", config_overrides=PLAIN), config=config, device="cpu",
                      plugins=[probe], method=ReplayConfig(memory_size=8, images_per_identity=2,
                                                           mix_into_batch=False))
    for experience in stream.train_stream:
        strategy.train(experience)
    identities = [int(e.reid.num_identities) for e in stream.train_stream]
    memory = 8 // 2
    assert probe.steps == [2 * math.ceil(identities[0] / 2)] + [2 * math.ceil((n + memory) / 2)
                                                               for n in identities[1:]]
    assert all(len(batch) == 8 for session in probe.pids for batch in session)
