"""LwF's and LST-KC's old model, and EWC's latest anchor, are, right after a session (when the runner writes its
checkpoint), copies of the model's weights: the saved state says so instead of holding the weights twice, and a
strategy restored from it continues exactly like the uninterrupted one. The reference is the uninterrupted strategy itself (two tiny sessions, `test` model preset);
the "one copy" check counts the tensor bytes of the serialised state against the model's own state dict."""
import io

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.evaluation import TidyCSVLogger, reid_metrics, tidy_rows_from_csv
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins import OldModelKeeper
from ckda_avalanche.runner.training import seed_everything, session_seed
from ckda_avalanche.strategies import EWC, LSTKC, LwF, TrainConfig

SIZE = (32, 16)
DATASETS = ("regdb", "sysu")
METHODS = {"lwf": LwF, "lstkc": LSTKC, "ewc": EWC}

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]


@pytest.fixture(scope="module")
def stream(two_session_stream):
    return two_session_stream


def _strategy(method, csv, *, init_seed=0, mode="new"):
    torch.manual_seed(init_seed)
    overrides = METHODS[method].default_method.model_overrides()
    model = create_model("test", num_classes=0, img_size=SIZE, config_overrides=overrides)
    config = TrainConfig(lr=1e-3, epochs=1, num_identities=2, num_instances=2, amp="off", warmup_epochs=0)
    logger = TidyCSVLogger(csv, run="r", method=method, seed=0, dataset_names=DATASETS, protocol="paper", mode=mode)
    return METHODS[method](model=model, config=config, device="cpu",
                           evaluator=EvaluationPlugin(*reid_metrics(), loggers=[logger]))


def _train(strategy, stream, session):
    seed_everything(session_seed(0, session))
    strategy.train(stream.train_stream[session])


def _tensors(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif torch.is_tensor(value):
        yield value


def _nbytes(value):
    return sum(t.numel() * t.element_size() for t in _tensors(value))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_after_session_one_gives_the_uninterrupted_rows_from_one_model_copy(stream, tmp_path, method):
    reference_csv = tmp_path / "reference.csv"
    reference = _strategy(method, reference_csv)
    for session in range(2):
        _train(reference, stream, session)
        reference.eval(stream.test_stream)

    csv = tmp_path / "metrics.csv"
    strategy = _strategy(method, csv)
    _train(strategy, stream, 0)
    strategy.eval(stream.test_stream)
    buffer = io.BytesIO()
    torch.save(strategy.state_dict(), buffer)  # as the runner's checkpoint, after the session and its evaluation
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)

    model_bytes = sum(t.numel() * t.element_size() for t in strategy.model.state_dict().values())
    assert model_bytes > 100_000
    assert _nbytes(state["model"]) == model_bytes
    (plugin_state,) = state["plugins"].values()
    if method == "ewc":  # kept: the Fisher of session 1 (not weights); the anchor of session 1 is the model
        assert _nbytes(plugin_state["anchors"]) == 0 and plugin_state["anchors"] == [None]
        fisher_bytes = _nbytes(plugin_state["fishers"])
        assert 0 < fisher_bytes <= model_bytes and _nbytes(state["plugins"]) == fisher_bytes
        assert _nbytes(state) < model_bytes * 2.05
    else:
        assert _nbytes(state["plugins"]) == 0  # no second model, no other tensor of that size
        assert _nbytes(state) < model_bytes * 1.05  # the whole state: one model plus small metric history
        assert plugin_state["old_model"] == {"model": None, "same_as_model": True}

    fresh = _strategy(method, csv, init_seed=99, mode="append")  # other initial weights: everything must be loaded
    fresh.load_state_dict(state)
    (plugin,) = fresh.stateful_plugins().values()
    saved = strategy.model.state_dict()
    if method == "ewc":
        (anchor,) = plugin.anchors
        (expected_anchor,) = strategy.ewc.anchors
        assert anchor.keys() == expected_anchor.keys() and len(anchor) > 10
        assert all(torch.equal(anchor[k], expected_anchor[k]) for k in anchor)
    else:
        old = plugin.old.model.state_dict()
        assert old.keys() == saved.keys() and all(torch.equal(old[k], saved[k]) for k in saved)
        assert not plugin.old.model.training and not any(p.requires_grad for p in plugin.old.model.parameters())
    _train(fresh, stream, 1)
    fresh.eval(stream.test_stream)
    expected, got = tidy_rows_from_csv(reference_csv), tidy_rows_from_csv(csv)
    assert sorted(set(expected.train_exp)) == [1, 2] and (expected.metric == "forgetting/mAP").any()
    assert got.to_dict("records") == expected.to_dict("records")  # row for row, bit for bit
    if method == "lstkc":  # the fusion of session 2 used the restored old model
        assert fresh.lstkc.fusion_weights == reference.lstkc.fusion_weights and len(fresh.lstkc.fusion_weights) == 1


def test_a_kept_copy_that_differs_from_the_model_keeps_its_weights_and_restores_them():
    torch.manual_seed(0)
    model = create_model("test", num_classes=3, img_size=SIZE)
    keeper = OldModelKeeper()
    keeper.bind_template(model)
    assert keeper.state_dict() == {"model": None}  # nothing kept yet
    keeper.snapshot(model)
    assert keeper.state_dict() == {"model": None, "same_as_model": True}
    with torch.no_grad():  # the model moves on (e.g. a later plugin changed it): the copy must be stored
        next(model.parameters()).add_(1.0)
    state = keeper.state_dict()
    assert state["model"] is not None and "same_as_model" not in state
    assert _nbytes(state) == sum(t.numel() * t.element_size() for t in model.state_dict().values())

    restored = OldModelKeeper()
    other = create_model("test", num_classes=3, img_size=SIZE)
    restored.bind_template(other)
    restored.load_state_dict(state)
    copy = restored.ensure(other).state_dict()
    kept = keeper.model.state_dict()
    assert all(torch.equal(copy[k], kept[k]) for k in kept)
    assert not torch.equal(copy[next(iter(kept))], other.state_dict()[next(iter(kept))])

    unbound = OldModelKeeper()
    with pytest.raises(RuntimeError, match="same_as_model.*bind_template"):
        unbound.load_state_dict({"model": None, "same_as_model": True})


def test_ewc_keeps_its_latest_anchor_once_the_model_has_moved_on():
    from ckda_avalanche.plugins import ReIDEWCPlugin

    torch.manual_seed(0)
    model = create_model("test", num_classes=3, img_size=SIZE)
    plugin = ReIDEWCPlugin()
    plugin.bind_template(model)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    plugin.anchors, plugin.fishers = [weights], [{n: torch.ones_like(t) for n, t in weights.items()}]
    state = plugin.state_dict()
    assert state["anchors"] == [None] and state["latest_anchor_names"] == list(weights)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    state = plugin.state_dict()
    assert "latest_anchor_names" not in state and _nbytes(state["anchors"]) == _nbytes(weights)
    restored = ReIDEWCPlugin()
    restored.load_state_dict(state)  # weights saved: no model needed
    assert all(torch.equal(restored.anchors[0][n], weights[n]) for n in weights)
    with pytest.raises(RuntimeError, match="no model is bound"):
        ReIDEWCPlugin().load_state_dict({"anchors": [None], "fishers": [{}], "latest_anchor_names": ["x"]})
