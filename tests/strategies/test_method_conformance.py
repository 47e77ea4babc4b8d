"""Every registered method honours the contract the runner relies on (docs/adding_a_method.md).

Parametrised over the registry, so a method added there is checked without editing this file: it trains a first
session and scores finite retrieval metrics; it reports the bytes it keeps (ints, the model included); its
unweighted loss terms reach `LossTermsPlugin`; a ``state_dict()`` saved after session 1 and loaded into a fresh
strategy (whose model starts from other weights) continues session 2 to exactly the weights of the uninterrupted
strategy (what ``--resume`` needs); and its variants resolve to its own config type.
"""
from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch

from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
from ckda_avalanche.benchmarks.synthetic import generate_synthetic
from ckda_avalanche.evaluation import reid_metrics
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins.grad_share import GradShareProbe
from ckda_avalanche.plugins.loss_terms import LossTermsPlugin
from ckda_avalanche.runner.training import seed_everything, session_seed
from ckda_avalanche.runner.variants import model_overrides, resolve_method
from ckda_avalanche.strategies import TrainConfig, get_method, registered_methods

SIZE = (32, 16)
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_conformance")
    generate_synthetic(root, seed=0, scale=0.05, img_size=SIZE)
    return vi_lreid_benchmark(root, datasets=("regdb", "sysu"), img_size=SIZE)


def _strategy(name: str, *, init_seed: int):
    spec = get_method(name)
    method = spec.config() if spec.config is not None else None
    torch.manual_seed(init_seed)
    model = create_model("test", num_classes=0, img_size=SIZE, config_overrides=model_overrides(method))
    terms = LossTermsPlugin()
    # the plugins the runner adds to every method: loss-term means and the gradient-share probe
    kwargs = dict(model=model, device="cpu", plugins=[terms, GradShareProbe()],
                  evaluator=EvaluationPlugin(*reid_metrics()),
                  config=TrainConfig(lr=1e-3, epochs=1, warmup_epochs=0, num_identities=2, num_instances=2,
                                     amp="off", num_workers=0))
    if method is not None:
        kwargs["method"] = method
    return spec.strategy(**kwargs), terms


def _train(strategy, stream, session):
    seed_everything(session_seed(0, session))
    strategy.train(stream.train_stream[session])


def test_the_package_registers_its_nine_methods():
    assert set(registered_methods()) >= {"ckda", "finetune", "joint", "lwf", "ewc", "replay", "l2p", "lstkc", "dkp"}
    assert [name for name in registered_methods() if get_method(name).upper_bound] == ["joint"]


@pytest.mark.parametrize("name", registered_methods())
def test_method_contract(name, stream):
    strategy, terms = _strategy(name, init_seed=0)
    _train(strategy, stream, 0)
    result = strategy.eval(stream.test_stream)
    seen = result["mAP_Stream/eval_phase/test_stream"]
    assert math.isfinite(seen) and 0.0 < seen <= 1.0

    report = strategy.memory_report()
    assert "strategy/model" in report and all(isinstance(v, int) and v >= 0 for v in report.values())
    assert {"identity", "triplet"} <= set(terms.session_means)
    assert all(math.isfinite(v) for v in terms.session_means.values())

    buffer = io.BytesIO()
    torch.save(strategy.state_dict(), buffer)
    buffer.seek(0)
    resumed, _ = _strategy(name, init_seed=123)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    _train(strategy, stream, 1)
    _train(resumed, stream, 1)
    expected, got = strategy.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    differing = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differing, f"{name}: a resumed strategy trained session 2 to other weights: {differing[:5]}"


@pytest.mark.parametrize("name", registered_methods())
def test_method_variants_resolve_to_its_config(name):
    spec = get_method(name)
    resolved = resolve_method(name)
    if spec.config is None:
        assert resolved.config is None
        return
    assert type(resolved.config) is spec.config and resolved.config == spec.config()
    flags = [f.name for f in dataclasses.fields(spec.config) if f.default is False]
    if flags:
        variant = resolve_method(f"{name}[{flags[0]}]")
        assert getattr(variant.config, flags[0]) is True and variant.name == f"{name}[{flags[0]}]"
