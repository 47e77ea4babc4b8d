"""`TrainConfig.epoch_length`: the published code bases' epoch ("images") and one pass over identities."""
from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin

from ckda_avalanche.benchmarks.sampler import batches_per_epoch_for
from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.models import create_model
from ckda_avalanche.runner.config import CPU, PAPER, TEST
from ckda_avalanche.strategies import TrainConfig
from ckda_avalanche.strategies.finetune import FineTune
from ckda_avalanche.strategies.joint import Joint, JointConfig

SIZE = (32, 16)
PLAIN = {"use_msp": False, "use_mcp": False}
"""Joint's default model: no pixel prompters."""
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]


def test_hand_values():
    # RegDB: 206 ids, 2,060 images per modality, P=8, K=4: 2060 // 32 + 1 = 65 vs ceil(206 / 8) = 26.
    kw = dict(num_identities=206, num_visible=2060, num_infrared=2060, identities_per_batch=8,
              instances_per_identity=4)
    assert batches_per_epoch_for("images", **kw) == 65
    assert batches_per_epoch_for("identities", **kw) == 26
    # SYSU-MM01 training set: 395 ids, 22,258 visible and 11,909 infrared images: 22258 // 32 + 1 = 696 vs 50.
    kw = dict(num_identities=395, num_visible=22258, num_infrared=11909, identities_per_batch=8,
              instances_per_identity=4)
    assert batches_per_epoch_for("images", **kw) == 696
    assert batches_per_epoch_for("identities", **kw) == 50
    with pytest.raises(ValueError, match="epoch length"):
        batches_per_epoch_for("frames", **kw)


def test_config_field_and_presets():
    with pytest.raises(ValueError, match="TrainConfig.epoch_length"):
        TrainConfig(epoch_length="frames")
    assert PAPER.train.epoch_length == "images"
    assert CPU.train.epoch_length == TEST.train.epoch_length == "identities"


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_epoch")
    generate_synthetic(root, seed=0, scale=0.05, img_size=SIZE)
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=SIZE)


class _Batches(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.per_session: list[int] = []

    def before_training_epoch(self, strategy, *args, **kwargs):
        self.per_session.append(len(strategy.dataloader))


def _counts(samples):
    vis = sum(1 for s in samples if s.modality == 0)
    return len({s.pid for s in samples}), vis, len(samples) - vis


@pytest.mark.parametrize("equal", [True, False])
def test_joint_epoch_under_both_conventions(stream, equal):
    """Session 2 of Joint trains on the union; with equal iterations its epoch is still counted on session 2 alone."""
    expected = {}
    for convention in ("images", "identities"):
        probe = _Batches()
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=1, num_identities=2, num_instances=2, warmup_epochs=0, amp="off",
                          epoch_length=convention, equal_iterations=equal)
        model = create_model("test", img_size=SIZE, config_overrides=PLAIN)
        # the shared budget (full_epochs=False): the subject here is how equal_iterations counts an epoch
        strategy = Joint(model=model, config=cfg, device="cpu", plugins=[probe],
                         method=JointConfig(full_epochs=False))
        for experience in stream.train_stream:
            strategy.train(experience)
        sets = [list(e.reid.samples) for e in stream.train_stream]
        own = [_counts(s) for s in sets]
        union = [own[0], tuple(a + b for a, b in zip(own[0], own[1]))]  # datasets share no identity
        want = []
        for n_ids, vis, ir in (own if equal else union):
            if convention == "images":
                want.append(max(vis, ir) // 4 + 1)
            else:
                want.append(-(-n_ids // 2))
        assert probe.per_session == want
        expected[convention] = want
    assert expected["images"] != expected["identities"]  # the data really distinguishes the two conventions
