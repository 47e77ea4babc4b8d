"""`state_dict()` -> `load_state_dict()` into a fresh CKDA continues exactly like the uninterrupted strategy: same
tidy rows (``train_exp``, seen-average over trained datasets only, forgetting / BWT), same clock and same values from
``eval()`` / ``get_all_metrics()``. The reference is the uninterrupted strategy itself (two tiny sessions, `test`
model preset), computed without any state code."""
import io

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.evaluation import TidyCSVLogger, reid_metrics, tidy_rows_from_csv
from ckda_avalanche.models import create_model
from ckda_avalanche.runner.training import seed_everything, session_seed
from ckda_avalanche.strategies import CKDA, ReIDTemplate, TrainConfig
from ckda_avalanche.strategies.state import CLOCK_FIELDS, upgrade_legacy_state

SIZE = (32, 16)
DATASETS = ("regdb", "sysu")

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:No loggers specified")]


@pytest.fixture(scope="module")
def stream(two_session_stream):
    return two_session_stream


def _ckda(csv, *, init_seed=0, mode="new"):
    torch.manual_seed(init_seed)
    model = create_model("test", num_classes=0, img_size=SIZE)
    config = TrainConfig(lr=1e-3, epochs=1, num_identities=2, num_instances=2, amp="off", warmup_epochs=0)
    logger = TidyCSVLogger(csv, run="r", method="ckda", seed=0, dataset_names=DATASETS, protocol="paper", mode=mode)
    return CKDA(model=model, config=config, device="cpu",
                evaluator=EvaluationPlugin(*reid_metrics(), loggers=[logger]))


def _train(strategy, stream, session):
    seed_everything(session_seed(0, session))
    strategy.train(stream.train_stream[session])


def _save_and_load(strategy, csv):
    """Serialise like a checkpoint, then restore into a fresh CKDA whose model starts from other weights."""
    buffer = io.BytesIO()
    torch.save(strategy.state_dict(), buffer)
    buffer.seek(0)
    fresh = _ckda(csv, init_seed=99, mode="append")  # continues the same run's CSV
    fresh.load_state_dict(torch.load(buffer, weights_only=False))
    return fresh


@pytest.fixture(scope="module")
def uninterrupted(stream, tmp_path_factory):
    csv = tmp_path_factory.mktemp("reference") / "metrics.csv"
    strategy = _ckda(csv)
    first = second = None
    for session in range(2):
        _train(strategy, stream, session)
        result = strategy.eval(stream.test_stream)
        first, second = (result, second) if session == 0 else (first, result)
    return csv, strategy, first, second


def test_reference_rows_are_what_a_resume_must_reproduce(uninterrupted):
    """Hand-checkable facts of the reference: train_exp 1 and 2; after session 1 the seen-average is regdb alone;
    forgetting / BWT of regdb after session 2 = R[1, regdb] - R[2, regdb]."""
    rows = tidy_rows_from_csv(uninterrupted[0])
    assert sorted(set(rows.train_exp)) == [1, 2]
    mean = rows[rows.trial == "mean"]

    def value(train_exp, dataset, metric):
        hit = mean[(mean.train_exp == train_exp) & (mean.eval_dataset == dataset) & (mean.metric == metric)]
        assert len(hit) == 1, (train_exp, dataset, metric)
        return float(hit.value.iloc[0])

    seen1 = rows[(rows.train_exp == 1) & (rows.eval_dataset == "seen_avg") & (rows.metric == "mAP")]
    assert float(seen1.value.iloc[0]) == pytest.approx(value(1, "regdb", "mAP"))
    assert value(2, "regdb", "forgetting/mAP") == pytest.approx(value(1, "regdb", "mAP") - value(2, "regdb", "mAP"))
    bwt = rows[(rows.train_exp == 2) & (rows.metric == "bwt/mAP")]
    assert float(bwt.value.iloc[0]) == pytest.approx(value(2, "regdb", "mAP") - value(1, "regdb", "mAP"))


@pytest.mark.parametrize("order", ["train-eval-save-load-train-eval", "train-save-load-eval-train-eval"])
def test_resumed_strategy_writes_the_same_rows(stream, tmp_path, uninterrupted, order):
    reference_csv, reference, first, second = uninterrupted
    csv = tmp_path / "metrics.csv"
    strategy = _ckda(csv)
    _train(strategy, stream, 0)
    if order.startswith("train-eval"):
        got_first = strategy.eval(stream.test_stream)
        strategy = _save_and_load(strategy, csv)
    else:
        strategy = _save_and_load(strategy, csv)
        got_first = strategy.eval(stream.test_stream)
    _train(strategy, stream, 1)
    got_second = strategy.eval(stream.test_stream)
    expected, got = tidy_rows_from_csv(reference_csv), tidy_rows_from_csv(csv)
    assert len(expected) > 0
    assert got.to_dict("records") == expected.to_dict("records")  # row for row, bit for bit
    assert got_first == first and got_second == second  # what eval() returns
    assert dict(strategy.evaluator.get_all_metrics()) == dict(reference.evaluator.get_all_metrics())
    assert {f: getattr(strategy.clock, f) for f in CLOCK_FIELDS} == {
        f: getattr(reference.clock, f) for f in CLOCK_FIELDS}


def test_state_holds_clock_and_metric_history(stream, uninterrupted):
    state = uninterrupted[1].state_dict()
    assert state["clock"]["train_exp_counter"] == 2 == state["sessions_trained"]
    metric = state["evaluator"]["metrics"]["ReIDRetrievalPluginMetric"]
    assert metric["learned_at"] == {0: 1, 1: 2} and metric["last_trained_exp"] == 1
    assert {(r, c) for r, c, _ in metric["history"]["mAP"]} == {(1, 0), (1, 1), (2, 0), (2, 1)}


def test_mismatched_or_legacy_states_are_refused_clearly(stream, uninterrupted, tmp_path):
    state = uninterrupted[1].state_dict()
    silent = CKDA(model=create_model("test", num_classes=0, img_size=SIZE), device="cpu")  # no metrics
    with pytest.raises(KeyError, match=r"saved but absent: \['ReIDRetrievalPluginMetric'\].*strict_metrics=False"):
        silent.load_state_dict(state)
    with pytest.warns(UserWarning, match="ReIDRetrievalPluginMetric"):
        silent.load_state_dict(state, strict_metrics=False)
    assert silent.clock.train_exp_counter == 2
    legacy = {k: v for k, v in state.items() if k not in ("clock", "evaluator")}
    with pytest.raises(KeyError, match="upgrade_legacy_state"):
        _ckda(tmp_path / "a.csv").load_state_dict(legacy)
    metric_state = state["evaluator"]["metrics"]["ReIDRetrievalPluginMetric"]
    upgraded = upgrade_legacy_state(legacy, metric_states={"ReIDRetrievalPluginMetric": metric_state})
    restored = _ckda(tmp_path / "b.csv")
    restored.load_state_dict(upgraded)
    assert restored.clock.train_exp_counter == 2 and restored.clock.train_iterations == 0
    assert restored.evaluator.metrics[0].state_dict() == metric_state
    with pytest.raises(ValueError, match=r"state\['clock'\]\['train_exp_counter'\]: expected an integer >= 0"):
        ReIDTemplate(model=create_model("test", num_classes=0, img_size=SIZE), device="cpu").load_state_dict(
            {**state, "plugins": {}, "evaluator": {**state["evaluator"], "metrics": {}},
             "clock": {**state["clock"], "train_exp_counter": -1}})
