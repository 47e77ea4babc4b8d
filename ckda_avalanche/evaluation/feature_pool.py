"""Standalone retrieval metric: collect one dataset's test features, then score its evaluation protocol.

`ReIDRetrieval` follows Avalanche's standalone-metric shape (``update`` / ``result`` / ``reset``) so it can be used
without a strategy; `ckda_avalanche.evaluation.metrics.ReIDRetrievalPluginMetric` wraps it for Avalanche's
evaluation loop.

Scoring one dataset (``evaluate_protocol``), as fixed in ``docs/ARCHITECTURE.md`` and
``docs/protocol.md``:

1. the pool is ``experience.reid.samples`` and feature ``n`` belongs to ``samples[n]``;
2. with ``protocol.group_by_tracklet`` the features of each tracklet are averaged
   (`benchmarks.protocols.group_pool_by_tracklet`, order of first appearance) and the trials index the grouped pool;
3. features are L2-normalised (again: tracklet means are not unit-norm) and each `RetrievalTrial` is ranked with
   `evaluation.distance.cosine_distance` and `evaluation.ranking.evaluate_rank` under its rule (max_rank = the
   largest reported rank);
4. the dataset's score is the unweighted mean over trials of every metric;
5. the modality gap of the whole (grouped, normalised) pool (`evaluation.modality_gap`) is computed from the same
   features, once per dataset (no extra forward pass).

All scores are fractions in [0, 1] (mAP, Rank-k = CMC at k, mINP).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ckda_avalanche.benchmarks.protocols import EvalProtocol, group_pool_by_tracklet
from ckda_avalanche.benchmarks.sample import ReIDSample

from .distance import cosine_distance, l2_normalize
from .modality_gap import modality_gap
from .ranking import evaluate_rank

__all__ = ["TrialScores", "ExperienceScores", "metric_keys", "evaluate_protocol", "pool_features", "ReIDRetrieval"]


def metric_keys(ranks: Sequence[int], minp: bool) -> tuple[str, ...]:
    """Names of the reported metrics, in report order: ``mAP``, ``Rank<k>`` for each k, then ``mINP``."""
    return ("mAP", *(f"Rank{k}" for k in ranks)) + (("mINP",) if minp else ())


def _check_ranks(ranks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(k) for k in ranks)
    if not out or any(k < 1 for k in out) or len(set(out)) != len(out):
        raise ValueError(f"ranks must be distinct positive integers, got {tuple(ranks)}")
    return out


@dataclass(frozen=True)
class TrialScores:
    """Scores of one retrieval trial."""

    name: str
    """Trial name from the protocol (e.g. ``"ir2vis/trial0"``)."""
    rule: str
    """Ranking rule used (``"market"``, ``"sysu"``, ``"none"``)."""
    num_query: int
    """Number of queries in the trial."""
    num_gallery: int
    """Number of gallery items in the trial."""
    num_valid: int
    """Queries with at least one true match left after the rule's filtering (the ones averaged)."""
    values: dict[str, float]
    """Metric name -> fraction in [0, 1]."""


@dataclass(frozen=True)
class ExperienceScores:
    """Scores of one dataset (one test experience) under its protocol."""

    dataset: str
    """Dataset name (``experience.reid.dataset``)."""
    protocol: str
    """Protocol name (``"paper"`` / ``"full"``)."""
    trials: tuple[TrialScores, ...]
    """Per-trial scores, in protocol order."""
    mean: dict[str, float]
    """Unweighted mean over trials of every metric."""
    modality_gap: dict[str, float] = field(default_factory=dict)
    """`evaluation.modality_gap` values of the whole test pool (metric name -> value; empty when not computed)."""


def _pool_features(
    features: torch.Tensor, samples: Sequence[ReIDSample], group_by_tracklet: bool
) -> tuple[torch.Tensor, list[ReIDSample]]:
    if not group_by_tracklet:
        return features, list(samples)
    grouped, groups = group_pool_by_tracklet(list(samples))
    pooled = torch.stack([features[torch.as_tensor(g)].mean(dim=0) for g in groups])
    return pooled, grouped


def pool_features(features: torch.Tensor, samples: Sequence[ReIDSample],
                  protocol: EvalProtocol) -> tuple[torch.Tensor, list[ReIDSample]]:
    """The features the protocol ranks: tracklet means when it groups by tracklet, then L2-normalised (float32);
    returns them with the (possibly grouped) pool their rows belong to."""
    feats, pool = _pool_features(features.float(), samples, protocol.group_by_tracklet)
    # The model already L2-normalises; normalising again makes tracklet means unit-norm too, so the ranked
    # distance is the cosine distance of the protocol (`cosine_distance` does not normalise).
    return l2_normalize(feats), pool


def evaluate_protocol(
    features: torch.Tensor,
    samples: Sequence[ReIDSample],
    protocol: EvalProtocol,
    *,
    dataset: str,
    ranks: Sequence[int] = (1, 5, 10),
    minp: bool = True,
) -> ExperienceScores:
    """Score every trial of ``protocol`` on ``features`` (row n = ``samples[n]``) and average over trials."""
    ranks = _check_ranks(ranks)
    if features.ndim != 2 or features.shape[0] != len(samples):
        raise ValueError(
            f"{dataset}: expected one feature row per test sample ({len(samples)}), got features of shape "
            f"{tuple(features.shape)}"
        )
    feats, pool = pool_features(features, samples, protocol)
    pids = np.fromiter((s.pid for s in pool), dtype=np.int64, count=len(pool))
    camids = np.fromiter((s.camid for s in pool), dtype=np.int64, count=len(pool))
    keys = metric_keys(ranks, minp)
    trials: list[TrialScores] = []
    for trial in protocol.trials(pool):
        q, g = torch.as_tensor(trial.query), torch.as_tensor(trial.gallery)
        try:
            result = evaluate_rank(
                cosine_distance(feats[q], feats[g]), pids[trial.query], pids[trial.gallery],
                camids[trial.query], camids[trial.gallery], max_rank=max(ranks), rule=trial.rule,
            )
        except ValueError as exc:
            raise ValueError(f"{dataset} ({protocol.name} protocol), trial {trial.name!r}: {exc}") from exc
        cmc = np.asarray(result.cmc, dtype=np.float64)
        values = {"mAP": float(result.mAP)}
        for k in ranks:
            # A gallery shorter than k: every valid query has found its match by the gallery's end.
            values[f"Rank{k}"] = float(cmc[min(k, len(cmc)) - 1])
        if minp:
            values["mINP"] = float(result.mINP)
        trials.append(TrialScores(
            name=trial.name, rule=trial.rule, num_query=len(trial.query), num_gallery=len(trial.gallery),
            num_valid=int(result.num_valid), values={k: values[k] for k in keys},
        ))
    mean = {k: float(np.mean([t.values[k] for t in trials])) for k in keys}
    gap = modality_gap(feats, pids, [s.modality for s in pool])
    return ExperienceScores(dataset=dataset, protocol=protocol.name, trials=tuple(trials), mean=mean,
                            modality_gap=gap)


class ReIDRetrieval:
    """Standalone retrieval metric over one dataset's test pool.

    ``update`` appends a minibatch of retrieval features and their labels / cameras (in loader order);
    ``result(samples, protocol, dataset=...)`` checks that the collected rows line up with ``samples`` and returns
    `ExperienceScores`; ``reset`` empties it. Unlike Avalanche's scalar metrics, ``result`` needs the pool metadata
    and protocol because a retrieval score is only defined on a whole query/gallery split.
    """

    def __init__(self, *, ranks: Sequence[int] = (1, 5, 10), minp: bool = True) -> None:
        self.ranks = _check_ranks(ranks)
        self.minp = minp
        self._features: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._camids: list[torch.Tensor] = []

    @property
    def num_collected(self) -> int:
        """Number of feature rows collected since the last reset."""
        return sum(len(f) for f in self._features)

    def reset(self) -> None:
        """Forget every collected feature."""
        self._features, self._labels, self._camids = [], [], []

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor) -> None:
        """Append a minibatch: ``features (B, D)``, identity ``labels (B,)`` and ``camids (B,)``."""
        if not torch.is_tensor(features) or features.ndim != 2:
            raise TypeError(
                "retrieval features must be a (B, D) tensor: the model must return its L2-normalised retrieval "
                f"feature in eval mode, got {type(features).__name__}"
                + (f" of shape {tuple(features.shape)}" if torch.is_tensor(features) else "")
            )
        labels, camids = torch.as_tensor(labels).reshape(-1), torch.as_tensor(camids).reshape(-1)
        if len(labels) != len(features) or len(camids) != len(features):
            raise ValueError(
                f"minibatch of {len(features)} features has {len(labels)} labels and {len(camids)} camera ids"
            )
        self._features.append(features.detach().float().cpu())
        self._labels.append(labels.detach().long().cpu())
        self._camids.append(camids.detach().long().cpu())

    def features(self, samples: Sequence[ReIDSample], *, dataset: str) -> torch.Tensor:
        """The collected features (row n = ``samples[n]``), after the same alignment checks as `result`."""
        return self._check_alignment(samples, dataset)

    def _check_alignment(self, samples: Sequence[ReIDSample], dataset: str) -> torch.Tensor:
        n = self.num_collected
        if n != len(samples):
            raise ValueError(
                f"{dataset}: collected {n} retrieval features but experience.reid.samples has {len(samples)} "
                "items; the eval dataloader must visit every test sample exactly once, in order (no shuffle, "
                "no drop_last, no sampler)"
            )
        cams = torch.cat(self._camids).numpy()
        expected = np.fromiter((s.camid for s in samples), dtype=np.int64, count=len(samples))
        bad = np.flatnonzero(cams != expected)
        if bad.size:
            raise ValueError(
                f"{dataset}: minibatch camera ids differ from experience.reid.samples at {bad.size} positions "
                f"(first: item {bad[0]}, got {cams[bad[0]]}, expected {expected[bad[0]]}); the eval dataloader "
                "must not shuffle"
            )
        labels = torch.cat(self._labels).numpy()
        pids = np.fromiter((s.pid for s in samples), dtype=np.int64, count=len(samples))
        pairs = np.unique(np.stack([labels, pids], axis=1), axis=0)
        if len(np.unique(pairs[:, 0])) != len(pairs) or len(np.unique(pairs[:, 1])) != len(pairs):
            raise ValueError(
                f"{dataset}: minibatch labels are not a one-to-one relabelling of the samples' pids; the eval "
                "dataloader must not shuffle"
            )
        return torch.cat(self._features)

    def result(self, samples: Sequence[ReIDSample], protocol: EvalProtocol, *, dataset: str) -> ExperienceScores:
        """Score ``protocol`` on the collected features (row n must be ``samples[n]``)."""
        features = self._check_alignment(samples, dataset)
        return evaluate_protocol(features, samples, protocol, dataset=dataset, ranks=self.ranks, minp=self.minp)
