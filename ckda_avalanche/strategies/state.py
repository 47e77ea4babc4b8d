"""What a strategy's ``state_dict`` holds besides the model and plugins: the Avalanche clock and the evaluator.

A lifelong run of CKDA (Cui, Zhou, Peng, AAAI 2026, arXiv 2511.15016) is scored after every session, and its
forgetting / BWT compare scores across sessions. A strategy restored from ``state_dict()`` must therefore continue
with the same counters and score history as the one that saved it, not only with the same weights:

- the **clock** (`avalanche.training.plugins.Clock`): ``train_exp_counter`` is the ``train_exp`` of every tidy CSV row
  and the row of the score matrix R; the iteration counters are the x values of Avalanche's metric curves;
- the **evaluator**: the state of every metric with ``state_dict`` / ``load_state_dict`` (e.g.
  `ReIDRetrievalPluginMetric`: score history, when each dataset was learned, last trained experience), keyed like
  plugins by class name (``#n`` when repeated), plus the values Avalanche's `EvaluationPlugin` returns from
  ``eval()`` (``last_metric_results``) and ``get_all_metrics()`` (``all_metric_results``).

`upgrade_legacy_state` turns a state saved before the clock and evaluator were part of it (ckda-avalanche runner
checkpoints whose metric state sat in a separate ``"metric"`` entry) into the current layout.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CLOCK_FIELDS",
    "clock_state",
    "evaluator_state",
    "keyed_by_class",
    "load_clock_state",
    "load_evaluator_state",
    "stateful_metrics",
    "upgrade_legacy_state",
]

CLOCK_FIELDS: tuple[str, ...] = (
    "train_iterations", "train_exp_counter", "train_exp_epochs", "train_exp_iterations", "train_epoch_iterations",
    "total_iterations",
)
"""Counters of Avalanche 0.6's `Clock`, all saved."""


def keyed_by_class(objects: Iterable[Any]) -> dict[str, Any]:
    """``{ClassName: obj}`` in order, with ``ClassName#2``, ``#3``, ... for repeated classes."""
    found: dict[str, Any] = {}
    for obj in objects:
        key = name = type(obj).__name__
        n = 1
        while key in found:
            n += 1
            key = f"{name}#{n}"
        found[key] = obj
    return found


def _has_state(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


def clock_state(clock: Any) -> dict[str, int]:
    """The clock's counters (`CLOCK_FIELDS`)."""
    return {name: int(getattr(clock, name)) for name in CLOCK_FIELDS}


def load_clock_state(clock: Any, state: Mapping[str, Any]) -> None:
    """Set the clock's counters from `clock_state` output (every field required, integers >= 0)."""
    missing = [name for name in CLOCK_FIELDS if name not in state]
    if missing:
        raise KeyError(f"state['clock']: missing counter(s) {missing}; expected {list(CLOCK_FIELDS)}")
    for name in CLOCK_FIELDS:
        value = state[name]
        if isinstance(value, bool) or int(value) != value or int(value) < 0:
            raise ValueError(f"state['clock'][{name!r}]: expected an integer >= 0, got {value!r}")
    for name in CLOCK_FIELDS:
        setattr(clock, name, int(state[name]))


def stateful_metrics(evaluator: Any) -> dict[str, Any]:
    """The evaluator's metrics that keep state (have ``state_dict`` and ``load_state_dict``), keyed by class name."""
    return keyed_by_class(m for m in getattr(evaluator, "metrics", ()) if _has_state(m))


def evaluator_state(evaluator: Any) -> dict[str, Any]:
    """``{"metrics": {key: metric.state_dict()}, "last_metric_results": ..., "all_metric_results": ...}``.

    The two result dicts are deep copies of what `EvaluationPlugin` returns from ``eval()`` / ``get_all_metrics()``
    (for ReID metrics: floats), so training after this call does not change the saved state.
    """
    all_results = getattr(evaluator, "all_metric_results", {}) if getattr(evaluator, "collect_all", False) else {}
    return {
        "metrics": {key: metric.state_dict() for key, metric in stateful_metrics(evaluator).items()},
        "last_metric_results": copy.deepcopy(dict(getattr(evaluator, "last_metric_results", {}))),
        "all_metric_results": {name: (list(xs), copy.deepcopy(list(values)))
                               for name, (xs, values) in all_results.items()},
    }


def load_evaluator_state(evaluator: Any, state: Mapping[str, Any], *, strict: bool = True) -> list[str]:
    """Restore `evaluator_state` output; returns the metric keys that were skipped (only when ``strict`` is False).

    With ``strict`` the saved metric states must match the evaluator's stateful metrics exactly (else ``KeyError``);
    otherwise the common ones are loaded and a warning names the others.
    """
    for key in ("metrics", "last_metric_results", "all_metric_results"):
        if key not in state:
            raise KeyError(f"state['evaluator']: missing entry {key!r}")
    metrics = stateful_metrics(evaluator)
    saved = state["metrics"]
    unknown = sorted(set(saved) - set(metrics))
    missing = sorted(set(metrics) - set(saved))
    skipped = unknown + missing
    if skipped:
        message = (f"metric states do not match the evaluator's metrics (saved but absent: {unknown}; present but "
                   f"not saved: {missing})")
        if strict:
            raise KeyError(f"ReIDTemplate.load_state_dict: {message}; build the evaluator with the same metrics, "
                           "or pass strict_metrics=False")
        warnings.warn(f"ReIDTemplate.load_state_dict: {message}; loaded the others", stacklevel=3)
    for key, metric in metrics.items():
        if key in saved:
            metric.load_state_dict(saved[key])
    evaluator.last_metric_results = copy.deepcopy(dict(state["last_metric_results"]))
    if getattr(evaluator, "collect_all", False):
        evaluator.all_metric_results.clear()
        for name, (xs, values) in state["all_metric_results"].items():
            evaluator.all_metric_results[name] = (list(xs), copy.deepcopy(list(values)))
    return skipped


def upgrade_legacy_state(state: Mapping[str, Any], *, metric_states: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A strategy state saved without ``"clock"`` / ``"evaluator"`` (ckda-avalanche before these entries existed) in
    the current layout.

    The clock's ``train_exp_counter`` is ``state["sessions_trained"]`` (every ReIDTemplate session advances both);
    the iteration counters were not saved and start at 0 (they are only the x values of metric curves).
    ``metric_states`` (``{"ReIDRetrievalPluginMetric": metric.state_dict(), ...}``, e.g. a legacy runner
    checkpoint's ``"metric"`` entry keyed by class name) becomes the evaluator's metric state; the values returned by
    past ``eval()`` calls were not saved and start empty. A state that already has both entries is returned as is.
    """
    if "clock" in state and "evaluator" in state:
        return dict(state)
    if "sessions_trained" not in state:
        raise KeyError("upgrade_legacy_state: the state has no 'sessions_trained' entry; not a ReIDTemplate state")
    upgraded = dict(state)
    clock = {name: 0 for name in CLOCK_FIELDS}
    clock["train_exp_counter"] = int(state["sessions_trained"])
    upgraded.setdefault("clock", clock)
    upgraded.setdefault("evaluator", {"metrics": dict(metric_states or {}), "last_metric_results": {},
                                      "all_metric_results": {}})
    return upgraded
