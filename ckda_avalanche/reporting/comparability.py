"""Which runs of a report can be ranked together: same dataset order, epochs, optimiser-step budget and preset.

A leaderboard compares methods by paired differences over seeds; a method trained for 3 epochs against one trained
for 1, or on another session order, is not a comparison of methods. Each run's settings come from two places: the
dataset order of its own CSV rows (the order in which datasets are first evaluated is the session order), and the
``config.json`` next to its CSV (`runner.run_state`; its ``overrides`` list records settings changed on a resume).

`screen_comparable` splits the runs of each protocol into groups of equal settings (`COMPARED_FIELDS`), keeps the
largest group (ties: the one with more methods, then the first in sorted order) and leaves every other run out with
a `run_checks.RunLeftOutWarning` naming the fields in which it differs. Runs without a ``config.json`` (a bare CSV,
a DataFrame) are compared on their dataset order only, and only with each other: a report mixing them with run
folders leaves them out (their settings are unknown).
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .run_checks import NoRunToReportError, RunLeftOutWarning

__all__ = ["COMPARED_FIELDS", "run_settings", "screen_comparable"]

COMPARED_FIELDS: tuple[str, ...] = (
    "model", "pretrained", "train.epochs", "train.epoch_length", "train.equal_iterations", "train.num_identities",
    "train.num_instances", "synthetic_scale",
)
"""``config.json`` run-config fields (dotted, as in a ``--config`` file) that runs on one board must share: the
preset's model and pretrained start, the epochs and optimiser-step budget (batch shape, epoch length), the data's
scale. The synthetic draw (``synthetic_seed``) is not one of them: runs of several draws pool on one board as
replicates (draw x seed), every row names its draw and pairs only within it (`leaderboard`, `draws`)."""
_RUN_KEYS = ("method", "protocol", "run", "seed")
_SPECIAL = ("seen_avg", "-")
_NO_CONFIG = "no config.json"


def _field(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return "(absent)"
        value = value[part]
    return value


def run_settings(record: Mapping[str, Any] | None) -> dict[str, str]:
    """The `COMPARED_FIELDS` of a ``config.json`` record as text (a field changed on a resume reads
    ``"1, then 3 after session 1"``); ``{"config": "no config.json"}`` when there is none."""
    if not isinstance(record, Mapping) or not isinstance(record.get("run_config"), Mapping):
        return {"config": _NO_CONFIG}
    config = record["run_config"]
    settings = {name: json.dumps(_field(config, name), sort_keys=True) for name in COMPARED_FIELDS}
    for change in record.get("overrides", []) or []:
        changed = change.get("changed") if isinstance(change, Mapping) else None
        if not isinstance(changed, Mapping):
            continue
        for name, pair in changed.items():
            if name in settings and isinstance(pair, (list, tuple)) and len(pair) == 2:
                settings[name] = (f"{json.dumps(pair[0])}, then {json.dumps(pair[1])} after session "
                                  f"{change.get('after_session')}")
    return settings


def _dataset_order(rows: pd.DataFrame) -> str:
    per_dataset = rows[~rows["eval_dataset"].isin(_SPECIAL) & (rows["trial"] == "mean")]
    return " > ".join(str(d) for d in pd.unique(per_dataset["eval_dataset"]))


def _name(keys: tuple) -> str:
    method, protocol, run, seed = keys
    return f"run {run!r} (method {method}, seed {seed}, protocol {protocol})"


def _difference(mine: Mapping[str, str], board: Mapping[str, str]) -> str:
    if (mine.get("config") == _NO_CONFIG) != (board.get("config") == _NO_CONFIG):
        return ("no config.json here (missing or unreadable: its settings are unknown)" if mine.get("config")
                else "its run folder has a config.json, the board's runs have none")
    names = [n for n in dict.fromkeys([*board, *mine]) if mine.get(n) != board.get(n)]
    shown = [f"{n} {mine.get(n, '(unknown)')} here, {board.get(n, '(unknown)')} on the board" for n in names[:3]]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return "; ".join(shown) + more


def screen_comparable(frame: pd.DataFrame, records: Mapping[str, Mapping[str, Any] | None] | None = None,
                      ) -> pd.DataFrame:
    """The rows of the runs that can be ranked together, per protocol (see the module docstring).

    ``frame``: tidy rows, optionally with the ``_source`` column (CSV file of each row); ``records``: source ->
    its run's ``config.json`` record (or None). Raises `NoRunToReportError` when nothing is left (never happens:
    the largest group always stays).
    """
    sources = frame["_source"] if "_source" in frame.columns else pd.Series("", index=frame.index)
    records = records or {}
    keep = pd.Series(True, index=frame.index)
    for protocol, protocol_rows in frame.groupby("protocol", sort=True):
        runs: dict[tuple, tuple[pd.Index, dict[str, str]]] = {}
        for keys, rows in protocol_rows.groupby(list(_RUN_KEYS), sort=True):
            source = str(sources.loc[rows.index[0]])
            settings = {"datasets (session order)": _dataset_order(rows)}
            settings.update(run_settings(records.get(source)) if source else {"config": _NO_CONFIG})
            runs[keys] = (rows.index, settings)
        groups: dict[str, list[tuple]] = {}
        for keys, (_, settings) in runs.items():
            groups.setdefault(json.dumps(settings, sort_keys=True), []).append(keys)
        if len(groups) < 2:
            continue
        best = max(sorted(groups), key=lambda g: (len(groups[g]), len({k[0] for k in groups[g]})))
        board = json.loads(best)
        count = len(groups[best])
        for group, members in sorted(groups.items()):
            if group == best:
                continue
            for keys in members:
                index, settings = runs[keys]
                keep.loc[index] = False
                warnings.warn(
                    f"{_name(keys)} left out: not comparable with the {count} run(s) on the {protocol} board "
                    f"({_difference(settings, board)}); report it with the runs of its own settings",
                    RunLeftOutWarning, stacklevel=3)
    if not keep.any():
        raise NoRunToReportError("no run left to report (see the warnings)")
    return frame[keep.to_numpy()].reset_index(drop=True)
