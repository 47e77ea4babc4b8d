"""Retrieval plugin metric inside a real Avalanche Naive strategy on a tiny 2-experience stream.

Values emitted by the evaluator (and written to the tidy CSV) must equal `evaluate_rank` called by hand on the very
features the model produced during Avalanche's eval loop (captured with a forward hook).
"""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.utils import DataAttribute, TaskAwareSupervisedClassificationDataset
from avalanche.benchmarks.utils.data_attribute import TaskLabels
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.data import TensorDataset

from ckda_avalanche.benchmarks.protocols import EvalProtocol, PoolSelector, TrialSpec, group_pool_by_tracklet
from ckda_avalanche.benchmarks.sample import ReIDSample
from ckda_avalanche.benchmarks.streams import ReIDExperienceInfo
from ckda_avalanche.evaluation import ReIDRetrieval, TidyCSVLogger, reid_metrics, tidy_rows_from_csv
from ckda_avalanche.evaluation.distance import cosine_distance, l2_normalize
from ckda_avalanche.evaluation.ranking import evaluate_rank

DIM_IN, DIM_OUT, IDS = 12, 6, 4
NAMES = ("dsa", "dsb")
KEYS = ("mAP", "Rank1", "Rank5", "Rank10", "mINP")


def _protocol(group_by_tracklet):
    return EvalProtocol(name="paper", group_by_tracklet=group_by_tracklet, specs=[
        TrialSpec(name="ir2vis", rule="market", query=PoolSelector(modality=1), gallery=PoolSelector(modality=0)),
        TrialSpec(name="vis2ir", rule="none", query=PoolSelector(modality=0), gallery=PoolSelector(modality=1)),
    ])


def _experience_data(index, generator):
    """IDS identities x 2 modalities x 3 frames; dataset b groups frames into tracklets of 3."""
    samples, feats = [], []
    centres = torch.randn(IDS, DIM_IN, generator=generator)
    for pid in range(IDS):
        for modality, camid in ((0, 1), (1, 2)):
            tracklet = (2 * pid + modality) if index == 1 else -1
            for frame in range(3):
                samples.append(ReIDSample(path=f"/fake/{NAMES[index]}/{pid}_{modality}_{frame}.png", pid=100 + pid,
                                          camid=camid, modality=modality, tracklet=tracklet))
                feats.append(centres[pid] + 1.2 * torch.randn(DIM_IN, generator=generator))
    offset = index * IDS
    labels = torch.tensor([offset + s.pid - 100 for s in samples])
    cams = torch.tensor([s.camid for s in samples])
    mods = torch.tensor([s.modality for s in samples])
    base = TensorDataset(torch.stack(feats), labels, cams, mods)
    dataset = TaskAwareSupervisedClassificationDataset(
        [base], data_attributes=[DataAttribute(labels.tolist(), "targets"), TaskLabels([0] * len(samples))])
    def info(split, protocol):
        return ReIDExperienceInfo(dataset=NAMES[index], split=split, num_identities=IDS, label_offset=offset,
                                  identities=tuple(range(100, 100 + IDS)), samples=tuple(samples), protocol=protocol)
    return dataset, samples, info


class TinyReIDModel(nn.Module):
    """Train mode: identity logits; eval mode: L2-normalised retrieval feature (the model contract)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(DIM_IN, DIM_OUT)
        self.head = nn.Linear(DIM_OUT, 2 * IDS)

    def forward(self, x):
        feat = self.body(x)
        return self.head(feat) if self.training else F.normalize(feat, dim=1)


def _setup(tmp_path, *, eval_every=-1):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    data = [_experience_data(i, generator) for i in range(2)]
    bm = benchmark_from_datasets(train=[d[0] for d in data], test=[d[0] for d in data])
    for i, (_, _, info) in enumerate(data):
        bm.train_stream[i].reid = info("train", None)
        bm.test_stream[i].reid = info("test", _protocol(group_by_tracklet=i == 1))
    model = TinyReIDModel()
    csv_path = tmp_path / "tidy.csv"
    evaluator = EvaluationPlugin(
        *reid_metrics(), loggers=[TidyCSVLogger(csv_path, run="t", method="naive", seed=0,
                                                dataset_names=NAMES, protocol="paper")], collect_all=True)

    def criterion(output, target):  # the ReID criterion contract: zero loss on eval-mode features
        return F.cross_entropy(output, target) if model.training else output.sum() * 0.0

    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.5), criterion=criterion,
                     train_mb_size=8, train_epochs=1, eval_mb_size=7, evaluator=evaluator, device="cpu",
                     eval_every=eval_every)
    captured = []
    model.register_forward_hook(lambda m, i, o: captured.append(o.detach().clone()) if not m.training else None)
    return bm, strategy, evaluator, csv_path, [d[1] for d in data], captured


def _by_hand(features, samples, group_by_tracklet):
    """Scores per trial, computed directly with the protocol, cosine_distance and evaluate_rank."""
    pool = list(samples)
    if group_by_tracklet:
        pool, groups = group_pool_by_tracklet(pool)
        features = torch.stack([features[g].mean(0) for g in groups])
    features = l2_normalize(features)
    pids = np.array([s.pid for s in pool])
    cams = np.array([s.camid for s in pool])
    out = {}
    for trial in _protocol(group_by_tracklet).trials(pool):
        r = evaluate_rank(cosine_distance(features[trial.query], features[trial.gallery]),
                          pids[trial.query], pids[trial.gallery], cams[trial.query], cams[trial.gallery],
                          max_rank=10, rule=trial.rule)
        out[trial.name] = {"mAP": r.mAP, "Rank1": r.cmc[0], "Rank5": r.cmc[4], "Rank10": r.cmc[9], "mINP": r.mINP}
    return out


def test_plugin_metric_matches_evaluate_rank_and_feeds_the_tidy_csv(tmp_path):
    bm, strategy, evaluator, csv_path, samples, captured = _setup(tmp_path)
    expected = {}  # (train_exp, dataset index) -> trial -> metric -> value
    for train_exp in range(3):
        if train_exp:
            strategy.train(bm.train_stream[train_exp - 1])
        captured.clear()
        strategy.eval(bm.test_stream)
        assert len(captured) == 2 * 4  # 24 items per experience in eval batches of 7: no extra forward pass
        for d in range(2):
            feats = torch.cat(captured[4 * d: 4 * d + 4])
            expected[train_exp, d] = _by_hand(feats, samples[d], group_by_tracklet=d == 1)
        last = evaluator.get_last_metrics()
        for d in range(2):
            for key in KEYS:
                trial_values = expected[train_exp, d]
                mean = np.mean([trial_values[t][key] for t in trial_values])
                assert last[f"{key}_Exp/eval_phase/test_stream/Exp{d:03d}"] == pytest.approx(mean, abs=1e-12)
                for trial, values in trial_values.items():
                    name = f"{key}_Exp/eval_phase/test_stream/Exp{d:03d}/trial={trial}"
                    assert last[name] == pytest.approx(values[key], abs=1e-12)
        seen = [0, 1] if train_exp in (0, 2) else [0]  # before training: every dataset
        for key in KEYS:
            stream = np.mean([np.mean([v[key] for v in expected[train_exp, d].values()]) for d in seen])
            assert last[f"{key}_Stream/eval_phase/test_stream"] == pytest.approx(stream, abs=1e-12)

    def trial_mean(t, d, key):
        return np.mean([v[key] for v in expected[t, d].values()])

    last = evaluator.get_last_metrics()
    for key in ("mAP", "Rank1"):
        drop = trial_mean(1, 0, key) - trial_mean(2, 0, key)  # dataset 0: learned at 1, now 2
        assert last[f"{key}_Forgetting_Exp/eval_phase/test_stream/Exp000"] == pytest.approx(drop, abs=1e-12)
        assert last[f"{key}_Forgetting_Stream/eval_phase/test_stream"] == pytest.approx(drop, abs=1e-12)
        assert last[f"{key}_BWT_Stream/eval_phase/test_stream"] == pytest.approx(-drop, abs=1e-12)
    assert "mAP_Forgetting_Exp/eval_phase/test_stream/Exp001" not in last  # learned in the current session

    rows = tidy_rows_from_csv(csv_path)
    # 3 evals x (2 datasets x (5 metrics x (mean + 2 trials) + 2 modality-gap rows) + 5 seen_avg) + forgetting/bwt
    # rows after session 2.
    assert len(rows) == 3 * (2 * (5 * 3 + 2) + 5) + 6
    gap = rows[rows.metric.str.startswith("modality_gap/")]
    assert sorted(set(gap.metric)) == ["modality_gap/centroid", "modality_gap/ratio"] and (gap.trial == "mean").all()
    assert len(gap) == 3 * 2 * 2 and set(gap.eval_dataset) == {"dsa", "dsb"}
    assert set(rows["train_exp"]) == {0, 1, 2}
    row = rows[(rows.train_exp == 2) & (rows.eval_dataset == "dsb") & (rows.trial == "vis2ir")
               & (rows.metric == "mINP")]
    assert row["value"].item() == pytest.approx(expected[2, 1]["vis2ir"]["mINP"], abs=1e-12)
    row = rows[(rows.train_exp == 1) & (rows.eval_dataset == "seen_avg") & (rows.metric == "Rank1")]
    assert row["trial"].item() == "-"
    assert row["value"].item() == pytest.approx(trial_mean(1, 0, "Rank1"), abs=1e-12)
    forgetting = rows[rows.metric.str.startswith(("forgetting/", "bwt/"))]
    assert sorted(zip(forgetting.eval_dataset, forgetting.metric)) == sorted([
        ("dsa", "forgetting/mAP"), ("dsa", "forgetting/Rank1"), ("seen_avg", "forgetting/mAP"),
        ("seen_avg", "forgetting/Rank1"), ("seen_avg", "bwt/mAP"), ("seen_avg", "bwt/Rank1")])
    assert (forgetting.train_exp == 2).all()

    metric = evaluator.metrics[0]
    state = metric.state_dict()
    fresh = reid_metrics()[0]
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.score_matrix("mAP"), metric.score_matrix("mAP"))
    assert metric.score_matrix("mAP")[1, 0] == pytest.approx(trial_mean(1, 0, "mAP"), abs=1e-12)
    from_csv = reid_metrics()[0]  # resume path: rebuild the history from the (truncated) tidy CSV
    from_csv.load_history_from_tidy(rows, dataset_names=NAMES, trained_sessions=2)
    np.testing.assert_array_equal(from_csv.score_matrix("Rank1"), metric.score_matrix("Rank1"))
    assert from_csv.state_dict()["learned_at"] == state["learned_at"] == {0: 1, 1: 2}
    assert from_csv.state_dict()["last_trained_exp"] == state["last_trained_exp"] == 1


def test_periodic_evaluation_is_not_recorded(tmp_path):
    bm, strategy, evaluator, csv_path, _, _ = _setup(tmp_path, eval_every=1)
    strategy.train(bm.train_stream[0], eval_streams=[bm.test_stream])
    assert "mAP_Stream/eval_phase/test_stream" in evaluator.get_last_metrics()  # interactive loggers see it
    assert tidy_rows_from_csv(csv_path).empty  # but neither the CSV ...
    assert np.isnan(evaluator.metrics[0].score_matrix("mAP")).all()  # ... nor the forgetting history
    strategy.eval(bm.test_stream)
    assert set(tidy_rows_from_csv(csv_path)["train_exp"]) == {1}


def test_untrained_datasets_alone_give_no_seen_average(tmp_path):
    bm, strategy, evaluator, csv_path, _, _ = _setup(tmp_path)
    strategy.train(bm.train_stream[0])
    strategy.eval(bm.test_stream[1:])  # zero-shot on the second dataset only
    rows = tidy_rows_from_csv(csv_path)
    assert set(rows["eval_dataset"]) == {"dsb"}
    assert "mAP_Stream/eval_phase/test_stream" not in evaluator.get_last_metrics()
    assert "mAP_Exp/eval_phase/test_stream/Exp001" in evaluator.get_last_metrics()


def _pool(n=6):
    return [ReIDSample(path=f"/f/{i}", pid=i % 3, camid=1 + i % 2, modality=i % 2) for i in range(n)]


def test_collected_features_must_line_up_with_the_samples():
    metric = ReIDRetrieval()
    samples = _pool()
    feats = l2_normalize(torch.randn(6, 4))
    metric.update(feats[:4], torch.tensor([s.pid for s in samples[:4]]), torch.tensor([s.camid for s in samples[:4]]))
    with pytest.raises(ValueError, match="collected 4 retrieval features but experience.reid.samples has 6"):
        metric.result(samples, _protocol(False), dataset="x")
    metric.reset()
    shuffled = [samples[i] for i in (1, 0, 2, 3, 4, 5)]
    metric.update(feats, torch.tensor([s.pid for s in shuffled]), torch.tensor([s.camid for s in shuffled]))
    with pytest.raises(ValueError, match="camera ids differ .* must not shuffle"):
        metric.result(samples, _protocol(False), dataset="x")
    with pytest.raises(TypeError, match="retrieval feature in eval mode"):
        metric.update(torch.randn(2, 3, 4), torch.zeros(2), torch.zeros(2))


def test_model_must_be_in_eval_mode_and_experience_must_carry_reid():
    plugin = reid_metrics()[0]
    model = nn.Linear(2, 2)  # left in training mode
    strategy = types.SimpleNamespace(model=model, mbatch=(None, torch.zeros(1), torch.zeros(1), torch.zeros(1), 0),
                                     mb_output=torch.zeros(1, 2))
    plugin.before_eval_exp(strategy)
    with pytest.raises(RuntimeError, match="training mode"):
        plugin.after_eval_iteration(strategy)
    strategy.experience = types.SimpleNamespace(current_experience=0)
    with pytest.raises(ValueError, match="test experience 0 has no `reid`"):
        plugin.after_eval_exp(strategy)
    with pytest.raises(ValueError, match="at least one"):
        reid_metrics(experience=False, stream=False, forgetting=False)
    with pytest.raises(KeyError, match="mINP"):
        plugin.score_matrix("mINP")  # forgetting history is kept for mAP and Rank1 only


def test_a_trial_without_valid_query_names_dataset_and_trial():
    # Every identity appears once, so no query has a true match in the other modality.
    distinct = [ReIDSample(path=s.path, pid=i, camid=s.camid, modality=s.modality) for i, s in enumerate(_pool())]
    metric = ReIDRetrieval()
    metric.update(l2_normalize(torch.randn(6, 4)), torch.arange(6), torch.tensor([s.camid for s in distinct]))
    with pytest.raises(ValueError, match="toy \\(paper protocol\\), trial 'ir2vis'"):
        metric.result(distinct, _protocol(False), dataset="toy")
