"""FineTune: the base ReID loss only, no teacher, no merge; one short session on tiny synthetic data."""
import pytest
import torch
from avalanche.core import SupervisedPlugin

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.models import create_model
from ckda_avalanche.strategies import METHOD_CONFIGS, STRATEGIES, CKDAConfig, FineTune, ReIDTemplate, TrainConfig

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]
SIZE = (32, 16)


def test_registry():
    assert STRATEGIES["finetune"] is FineTune and issubclass(FineTune, ReIDTemplate)
    assert METHOD_CONFIGS["ckda"] is CKDAConfig


class LossProbe(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.pairs = []

    def before_backward(self, strategy, **kw):
        self.pairs.append((float(strategy.loss.detach()), float(strategy._criterion.last_terms.total)))


def test_finetune_loss_is_the_base_criterion_and_keeps_no_state(tmp_path):
    generate_synthetic(tmp_path, seed=0, scale=0.05, img_size=SIZE)
    stream = vi_lreid_benchmark(tmp_path, datasets=("regdb",), img_size=SIZE)
    torch.manual_seed(0)
    model = create_model("test", num_classes=0, img_size=SIZE, config_overrides={"use_msp": False, "use_mcp": False})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = LossProbe()
    strategy = FineTune(model=model, config=TrainConfig(epochs=2, num_identities=2, num_instances=2, amp="off"),
                        device="cpu", plugins=[probe])
    strategy.train(stream.train_stream[0])
    assert probe.pairs and all(loss == pytest.approx(base) for loss, base in probe.pairs)
    changed = [k for k, v in model.state_dict().items() if k in before and not torch.equal(before[k], v)]
    assert "backbone.blocks.0.attn.qkv.weight" in changed
    assert set(strategy.state_dict()["plugins"]) == set()  # nothing kept between sessions but the model
    assert set(strategy.memory_report()) == {"strategy/model"}
