"""CKDA's data quirks (b) and (c) live in the stream: a mismatch between `CKDAConfig` and the stream is an error."""
from __future__ import annotations

import pytest

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.models import create_model
from ckda_avalanche.strategies import TrainConfig
from ckda_avalanche.strategies.ckda import CKDA
from ckda_avalanche.strategies.ckda_config import CKDAConfig

SIZE = (32, 16)
pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic_llcm")
    generate_synthetic(path, seed=0, scale=0.05, img_size=SIZE)
    return path


def _strategy(method: CKDAConfig) -> CKDA:
    cfg = TrainConfig(epochs=1, num_identities=2, num_instances=2, warmup_epochs=0, amp="off")
    return CKDA(model=create_model("test", img_size=SIZE, config_overrides=method.model_overrides()), method=method,
                config=cfg, device="cpu")


@pytest.mark.parametrize("flag", ["quirk_llcm_flip_test_modality", "quirk_llcm_max_train_label_500"])
def test_config_quirk_without_stream_quirk_is_an_error(root, flag):
    method = CKDAConfig(**{flag: True})
    plain = vi_lreid_benchmark(root, datasets=("llcm",), img_size=SIZE)
    strategy = _strategy(method)
    with pytest.raises(ValueError, match=f"CKDAConfig.{flag} is True .*stream_overrides"):
        if flag == "quirk_llcm_flip_test_modality":
            strategy.eval(plain.test_stream)
        else:
            strategy.train(plain.train_stream[0])
    quirked = vi_lreid_benchmark(root, datasets=("llcm",), img_size=SIZE, **method.stream_overrides())
    for experience in (*quirked.train_stream, *quirked.test_stream):
        strategy.check_stream_quirks(experience)  # matching stream: no error
    with pytest.raises(ValueError, match=f"CKDAConfig.{flag} is False"):
        unquirked = _strategy(CKDAConfig())
        for experience in (*quirked.train_stream, *quirked.test_stream):
            unquirked.check_stream_quirks(experience)


def test_separate_cka_weights():
    """Spec section 4 "Options": one CKA term can be removed without reweighting the other."""
    published = CKDAConfig()
    assert (published.effective_intra_weight, published.effective_inter_weight) == (0.5, 0.5)
    only_inter = CKDAConfig(intra_weight=0.0)
    assert (only_inter.effective_intra_weight, only_inter.effective_inter_weight) == (0.0, 0.5)
    custom = CKDAConfig(intra_weight=2.0, inter_weight=0.25, beta=7.0)
    assert (custom.effective_intra_weight, custom.effective_inter_weight) == (2.0, 0.25)
    assert CKDAConfig(inter_weight=3.0, no_cka=True).effective_inter_weight == 0.0
    with pytest.raises(ValueError, match="CKDAConfig.inter_weight"):
        CKDAConfig(inter_weight=-1.0)
    strategy = _strategy(CKDAConfig(intra_weight=0.0))
    assert (strategy.cka.intra_weight, strategy.cka.inter_weight) == (0.0, 0.5)
