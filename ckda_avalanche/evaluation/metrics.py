"""ReID retrieval metrics inside Avalanche's evaluation system (mAP, Rank-k, mINP, forgetting, BWT).

Use like any Avalanche metric helper::

    evaluator = EvaluationPlugin(*reid_metrics(), loggers=[InteractiveLogger(), TidyCSVLogger(...)])
    strategy = Naive(model=model, ..., evaluator=evaluator, eval_every=-1, plugins=[ReIDBatchPlugin()])
    for exp in benchmark.train_stream:
        strategy.train(exp)
        strategy.eval(benchmark.test_stream)

Model contract (``docs/ARCHITECTURE.md``). In eval mode the model returns the L2-normalised retrieval feature
``(B, D)`` and takes the modality of each sample: our strategies call ``model(x, modality)``; with a plain Avalanche
strategy (``Naive`` calls ``model(x)``) add ``plugins.ReIDBatchPlugin``, which hands ``strategy.mbatch[3]`` to the
model before every forward. The metric reads that output from ``strategy.mb_output``: it never runs an extra
forward pass, so features come from Avalanche's own eval loop (``model.eval()``, ``torch.no_grad()``, batched).

Collected per minibatch (``after_eval_iteration``): ``mb_output`` and the identity label / camera of
``strategy.mbatch[1]`` / ``[2]``. Trials select query and gallery from ``experience.reid.samples`` metadata, so
the (possibly flipped, LLCM quirk) modality flag of ``mbatch[3]`` is not used for scoring. At ``after_eval_exp``
the number of features must equal ``len(experience.reid.samples)`` and the cameras must match the samples in order
(an eval loader that shuffles or drops raises ``ValueError``); then the experience's protocol is scored
(`feature_pool.evaluate_protocol`).

Emitted `MetricValue` names (Avalanche's ``get_metric_name`` shape, no task label), values are fractions in [0, 1]:

- ``<m>_Exp/eval_phase/test_stream/Exp002`` for m in mAP, Rank1, Rank5, Rank10 (the chosen ranks), mINP: mean over
  the protocol's trials; ``<m>_Exp/eval_phase/test_stream/Exp002/trial=<trial name>``: one trial;
- ``modality_gap_ratio_Exp/eval_phase/test_stream/Exp002`` and ``modality_gap_centroid_Exp/...``: the modality
  gap of the dataset's test pool (`evaluation.modality_gap`; tidy metrics ``modality_gap/ratio`` and
  ``modality_gap/centroid``, trial ``mean``), from the same features, after every evaluation;
- ``<m>_Stream/eval_phase/test_stream``: mean over the evaluated datasets seen so far (experience index <= the last
  trained experience; every evaluated experience before any training; not emitted when the eval call contained
  only datasets not trained yet);
- ``<m>_Forgetting_Exp/eval_phase/test_stream/Exp000``, ``<m>_Forgetting_Stream/...`` and ``<m>_BWT_Stream/...``
  for m in mAP and Rank1 (`evaluation.forgetting` definitions), once at least one dataset was learned before the
  last training session.

Side channel for the tidy CSV: every value is a `ReIDMetricValue`, a `MetricValue` that also carries the tidy
fields (``metric``, ``eval_dataset``, ``trial``, ``train_exp``, ``protocol``), so `TidyCSVLogger` needs no name
parsing. ``train_exp`` is ``strategy.clock.train_exp_counter`` (training sessions finished).

Evaluations triggered from inside ``train()`` (Avalanche's periodic eval, ``eval_every >= 0``) are emitted as plain
`MetricValue`s (seen by interactive / TensorBoard loggers) but are not recorded in the forgetting history and not
written to the tidy CSV: they would overwrite the end-of-session scores. Use ``eval_every=-1`` and call
``strategy.eval(test_stream)`` after each ``train()`` for the session reports.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import (
    default_metric_name_template,
    generic_get_metric_name,
    phase_and_task,
    stream_type,
)

from .feature_pool import ExperienceScores, ReIDRetrieval, metric_keys
from .forgetting import average_forgetting, backward_transfer, forgetting_per_dataset, seen_average
from .metric_value import ReIDMetricValue

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

__all__ = ["FORGETTING_METRICS", "ReIDMetricValue", "ReIDRetrievalPluginMetric", "reid_metrics"]

FORGETTING_METRICS: tuple[str, ...] = ("mAP", "Rank1")
"""Metrics for which forgetting and BWT are reported."""


class ReIDRetrievalPluginMetric(PluginMetric[dict]):
    """Per-experience, stream-level and forgetting retrieval metrics for a VI-LReID test stream."""

    def __init__(
        self, *, experience: bool = True, stream: bool = True, ranks: Sequence[int] = (1, 5, 10),
        minp: bool = True, forgetting: bool = True, progress: bool = False,
    ) -> None:
        super().__init__()
        if not (experience or stream or forgetting):
            raise ValueError("reid metrics: enable at least one of experience, stream, forgetting")
        self.emit_experience = experience
        self.emit_stream = stream
        self.emit_forgetting = forgetting
        self.progress = progress
        self._retrieval = ReIDRetrieval(ranks=ranks, minp=minp)
        self.keys = metric_keys(self._retrieval.ranks, minp)
        self._scores: dict[int, ExperienceScores] = {}
        self._history: dict[str, dict[tuple[int, int], float]] = {m: {} for m in FORGETTING_METRICS}
        self._learned_at: dict[int, int] = {}
        self._last_trained_exp: int | None = None
        self._inside_train = False
        self._periodic = False
        self._checked_mode = False

    # ----------------------------------------------------------------- standalone-metric API
    def reset(self) -> None:
        """Forget the features being collected and this evaluation's scores (not the forgetting history)."""
        self._retrieval.reset()
        self._scores = {}

    def result(self) -> dict[int, ExperienceScores]:
        """Scores of the experiences evaluated in the current / last ``eval`` call, by experience index."""
        return dict(self._scores)

    def score_matrix(self, metric: str) -> np.ndarray:
        """History ``R[train_exp, experience]`` of ``metric`` (mAP or Rank1), NaN where not evaluated."""
        if metric not in self._history:
            raise KeyError(f"no history for {metric!r}; kept: {FORGETTING_METRICS}")
        cells = self._history[metric]
        if not cells:
            return np.full((1, 1), np.nan)
        rows = max(r for r, _ in cells) + 1
        cols = max(max(c for _, c in cells), *self._learned_at.keys(), 0) + 1
        matrix = np.full((rows, cols), np.nan)
        for (r, c), v in cells.items():
            matrix[r, c] = v
        return matrix

    def state_dict(self) -> dict[str, Any]:
        """What must survive a resume: forgetting history and training bookkeeping."""
        return {
            "history": {m: [[r, c, v] for (r, c), v in cells.items()] for m, cells in self._history.items()},
            "learned_at": {int(k): int(v) for k, v in self._learned_at.items()},
            "last_trained_exp": self._last_trained_exp,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` output."""
        missing = {"history", "learned_at", "last_trained_exp"} - set(state)
        if missing:
            raise KeyError(f"reid metric state lacks {sorted(missing)}")
        self._history = {m: {(int(r), int(c)): float(v) for r, c, v in state["history"].get(m, [])}
                         for m in FORGETTING_METRICS}
        self._learned_at = {int(k): int(v) for k, v in state["learned_at"].items()}
        last = state["last_trained_exp"]
        self._last_trained_exp = None if last is None else int(last)

    def load_history_from_tidy(self, rows: Any, *, dataset_names: Sequence[str], trained_sessions: int) -> None:
        """Rebuild the forgetting history from tidy rows (a DataFrame from `tidy_rows_from_csv`) on resume.

        Alternative to `load_state_dict` once the runner has truncated the CSV to its last checkpoint: uses the
        trial-mean mAP / Rank1 rows of ``dataset_names`` (stream order; dataset ``d`` learned in session
        ``d + 1``) and sets the last trained experience to ``trained_sessions - 1``.
        """
        names = list(dataset_names)
        chosen = rows[(rows["trial"] == "mean") & rows["metric"].isin(FORGETTING_METRICS)
                      & ~rows["eval_dataset"].isin(("seen_avg", "-"))]
        unknown = sorted(set(chosen["eval_dataset"]) - set(names))
        if unknown:
            raise ValueError(f"tidy rows hold datasets {unknown} that are not in dataset_names {names}")
        self._history = {m: {} for m in FORGETTING_METRICS}
        for train_exp, dataset, metric, value in zip(chosen["train_exp"], chosen["eval_dataset"], chosen["metric"],
                                                     chosen["value"]):
            if int(train_exp) <= trained_sessions:
                self._history[str(metric)][(int(train_exp), names.index(dataset))] = float(value)
        self._learned_at = {d: d + 1 for d in range(min(trained_sessions, len(names)))}
        self._last_trained_exp = trained_sessions - 1 if trained_sessions > 0 else None

    # ----------------------------------------------------------------- training bookkeeping
    def before_training(self, strategy: "SupervisedTemplate") -> None:
        self._inside_train = True

    def after_training(self, strategy: "SupervisedTemplate") -> None:
        self._inside_train = False

    def before_training_exp(self, strategy: "SupervisedTemplate") -> None:
        exp_id = int(strategy.experience.current_experience)
        # Clock.train_exp_counter counts finished sessions; it is incremented after this experience ends.
        self._learned_at[exp_id] = int(strategy.clock.train_exp_counter) + 1
        self._last_trained_exp = exp_id if self._last_trained_exp is None else max(self._last_trained_exp, exp_id)

    # ----------------------------------------------------------------- evaluation
    def before_eval(self, strategy: "SupervisedTemplate") -> None:
        self._periodic = self._inside_train
        self.reset()

    def before_eval_exp(self, strategy: "SupervisedTemplate") -> None:
        self._retrieval.reset()
        self._checked_mode = False

    def after_eval_iteration(self, strategy: "SupervisedTemplate") -> None:
        if not self._checked_mode:
            if strategy.model.training:
                raise RuntimeError("reid metrics: the model is in training mode during evaluation; retrieval "
                                   "features must come from model.eval()")
            self._checked_mode = True
        mbatch = strategy.mbatch
        if mbatch is None or len(mbatch) < 4:
            raise ValueError("reid metrics: eval minibatches must be (image, pid, camid, modality, task_label)")
        self._retrieval.update(strategy.mb_output, mbatch[1], mbatch[2])

    def after_eval_exp(self, strategy: "SupervisedTemplate") -> list[MetricValue]:
        experience = strategy.experience
        exp_id = int(experience.current_experience)
        reid = getattr(experience, "reid", None)
        if reid is None or getattr(reid, "protocol", None) is None:
            raise ValueError(
                f"reid metrics: test experience {exp_id} has no `reid` info with a protocol; build the stream "
                "with ckda_avalanche.benchmarks.streams.vi_lreid_benchmark"
            )
        scores = self._retrieval.result(reid.samples, reid.protocol, dataset=reid.dataset)
        if self.progress:
            print(f"[reid eval] {reid.dataset}: " + ", ".join(
                f"{t.name} mAP {100 * t.values['mAP']:.1f} R1 {100 * t.values['Rank1']:.1f}"
                if "Rank1" in t.values else f"{t.name} mAP {100 * t.values['mAP']:.1f}" for t in scores.trials),
                flush=True)
        self._retrieval.reset()
        self._scores[exp_id] = scores
        train_exp = int(strategy.clock.train_exp_counter)
        if not self._periodic:
            for metric in FORGETTING_METRICS:
                if metric in scores.mean:
                    self._history[metric][(train_exp, exp_id)] = scores.mean[metric]
        if not self.emit_experience:
            return []
        values = []
        for key in self.keys:
            base = self._name(strategy, f"{key}_Exp", exp_id)
            values.append(self._value(strategy, base, scores.mean[key], key, scores.dataset, "mean",
                                      scores.protocol))
            for trial in scores.trials:
                values.append(self._value(strategy, f"{base}/trial={trial.name}", trial.values[key], key,
                                          scores.dataset, trial.name, scores.protocol))
        for key, value in scores.modality_gap.items():  # e.g. modality_gap/ratio -> modality_gap_ratio_Exp/...
            values.append(self._value(strategy, self._name(strategy, f"{key.replace('/', '_')}_Exp", exp_id), value,
                                      key, scores.dataset, "mean", scores.protocol))
        return values

    def after_eval(self, strategy: "SupervisedTemplate") -> list[MetricValue]:
        if not self._scores:
            return []
        values: list[MetricValue] = []
        protocols = sorted({s.protocol for s in self._scores.values()})
        protocol = protocols[0] if len(protocols) == 1 else "+".join(protocols)
        if self.emit_stream:
            seen = self._seen_experiences(strategy)
            for key in self.keys if seen else ():
                mean = float(np.mean([self._scores[e].mean[key] for e in seen]))
                values.append(self._value(strategy, self._name(strategy, f"{key}_Stream", None), mean, key,
                                          "seen_avg", "-", protocol))
        if self.emit_forgetting and not self._periodic:
            values += self._forgetting_values(strategy, protocol)
        return values

    # ----------------------------------------------------------------- helpers
    def _seen_experiences(self, strategy: "SupervisedTemplate") -> list[int]:
        last = self._last_trained_exp
        if last is None and int(strategy.clock.train_exp_counter) > 0:
            last = int(strategy.clock.train_exp_counter) - 1  # resumed without state: in-order training
        evaluated = sorted(self._scores)
        if last is None:
            return evaluated
        # Empty when only not-yet-trained experiences were evaluated: then there is no seen-average to emit.
        return [e for e in evaluated if e <= last]

    def _forgetting_values(self, strategy: "SupervisedTemplate", protocol: str) -> list[MetricValue]:
        after = int(strategy.clock.train_exp_counter)
        values: list[MetricValue] = []
        for metric in FORGETTING_METRICS:
            if metric not in self.keys or after == 0:
                continue
            matrix = self.score_matrix(metric)
            if matrix.shape[0] <= after:
                continue  # nothing recorded at this row (e.g. only periodic evaluations)
            learned = [self._learned_at.get(d, d + 1) for d in range(matrix.shape[1])]
            per_dataset = forgetting_per_dataset(matrix, after=after, learned_at=learned)
            for d in np.flatnonzero(~np.isnan(per_dataset)):
                if int(d) not in self._scores:
                    continue
                values.append(self._value(
                    strategy, self._name(strategy, f"{metric}_Forgetting_Exp", int(d)), float(per_dataset[d]),
                    f"forgetting/{metric}", self._scores[int(d)].dataset, "mean", protocol))
            avg = average_forgetting(matrix, after=after, learned_at=learned, strict=False)
            bwt = backward_transfer(matrix, after=after, learned_at=learned, strict=False)
            for kind, value in (("Forgetting", avg), ("BWT", bwt)):
                if not np.isnan(value):
                    values.append(self._value(strategy, self._name(strategy, f"{metric}_{kind}_Stream", None),
                                              value, f"{kind.lower()}/{metric}", "seen_avg", "-", protocol))
        return values

    @staticmethod
    def _name(strategy: "SupervisedTemplate", metric_name: str, exp_id: int | None) -> str:
        phase, _ = phase_and_task(strategy)
        return generic_get_metric_name(default_metric_name_template, {
            "metric_name": metric_name, "phase_name": phase, "stream_name": stream_type(strategy.experience),
            "experience_id": exp_id, "task_label": None,
        })

    def _value(self, strategy: "SupervisedTemplate", name: str, value: float, metric: str, dataset: str,
               trial: str, protocol: str) -> MetricValue:
        x_plot = int(strategy.clock.train_iterations)
        if self._periodic:
            return MetricValue(self, name, value, x_plot)
        return ReIDMetricValue(self, name, value, x_plot, metric=metric, eval_dataset=dataset, trial=trial,
                               train_exp=int(strategy.clock.train_exp_counter), protocol=protocol)

    def __str__(self) -> str:
        return "ReID_Retrieval"


def reid_metrics(
    *, experience: bool = True, stream: bool = True, ranks: Sequence[int] = (1, 5, 10), minp: bool = True,
    forgetting: bool = True, progress: bool = False,
) -> list[PluginMetric]:
    """Retrieval metrics for an ``EvaluationPlugin``: one plugin metric that scores each test experience once.

    :param experience: emit per-experience values (trial mean and per trial).
    :param stream: emit the seen-average over the datasets trained so far.
    :param ranks: CMC ranks to report (``Rank<k>``).
    :param minp: also report mINP.
    :param forgetting: emit per-dataset forgetting, average forgetting and BWT for mAP and Rank-1.
    :param progress: print one line of scores per evaluated dataset.
    """
    return [ReIDRetrievalPluginMetric(experience=experience, stream=stream, ranks=ranks, minp=minp,
                                      forgetting=forgetting, progress=progress)]
