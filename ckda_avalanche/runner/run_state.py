"""What a resumed run checks and repairs in its folder: the recorded configuration and the tidy CSV.

- ``config.json``'s record of a run: `config_record`, written when the run starts.

- ``config.json`` records the configuration a run started with. Resuming with a different configuration would mix
  sessions trained under two settings in one result, so `check_resume_config` refuses with a one-line diff of the
  fields, unless the caller asks to override; the override is then recorded in ``config.json`` (the new settings,
  plus an ``overrides`` list saying after which session what changed).
- ``metrics.csv`` is rebuilt from the checkpoint: every checkpoint holds a copy of the CSV as it was when the
  checkpoint was written (key `CSV_KEY`). `restore_csv` puts the training rows of that copy back when the CSV is
  missing, unreadable or its training rows differ from it (the differing file is kept as ``metrics.csv.bak``), and
  refuses clearly when an older checkpoint has no copy. Rows of other protocols (written by ``ckda eval``) are not
  training's and are always kept: ``ckda eval`` also keeps them in ``rescored_rows.json`` (`keep_rescored_rows`),
  from which a CSV rebuilt from the checkpoint gets them back.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckda_avalanche.evaluation.tidy_logger import TIDY_COLUMNS, rewrite_csv_rows, tidy_rows_from_csv
from ckda_avalanche.models import get_model_config
from ckda_avalanche.runner.atomic import atomic_write_json, atomic_write_text
from ckda_avalanche.runner.config import RunConfig
from ckda_avalanche.runner.variants import ResolvedMethod

__all__ = [
    "ATTEMPTS", "CHECKPOINT", "COMPARED_KEYS", "CONFIG_JSON", "CSV_KEY", "METRICS", "RESCORED_JSON", "RunStateError", "check_resume_config", "config_changes", "config_record", "count_attempts", "csv_snapshot", "format_changes",
    "keep_rescored_rows", "load_config_record", "normalise", "rescored_rows",
    "restore_csv", "resume_config_problem",
]

logger = logging.getLogger("ckda_avalanche.runner")

ATTEMPTS = "attempts.jsonl"
"""One JSON line per start of a run (host, pid, executor, sessions already done): shows retries and resumes."""
CHECKPOINT = "checkpoint.pt"
"""File name of a run's checkpoint inside its folder."""
METRICS = "metrics.csv"
"""File name of a run's tidy CSV inside its folder."""
CONFIG_JSON = "config.json"
"""File name of the recorded configuration inside a run folder (``OUT/<method>/seed<k>/``)."""
CSV_KEY = "tidy_csv"
"""Checkpoint key holding the text of ``metrics.csv`` as of that checkpoint."""
RESCORED_JSON = "rescored_rows.json"
"""File in a run folder keeping every row ``ckda eval`` merged into ``metrics.csv`` under another protocol than the
run's, so that a CSV rebuilt from the checkpoint gets them back (JSON, not ``*.csv``: reports read every tidy CSV)."""
COMPARED_KEYS: tuple[str, ...] = ("method", "seed", "run_config", "method_config", "model_config")
"""Entries of ``config.json`` that must match on resume (``run``, the CSV's run name, is kept from the start)."""


class RunStateError(RuntimeError):
    """A run folder's recorded state does not allow the requested resume; the message says why and what to do."""


def count_attempts(run_dir: str | os.PathLike[str]) -> int:
    """Starts of the run recorded in its ``attempts.jsonl`` (0 when there is none)."""
    try:
        text = (Path(run_dir) / ATTEMPTS).read_text(encoding="utf-8")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if line.strip())


def config_record(method: ResolvedMethod, *, seed: int, run_name: str, config: RunConfig) -> dict[str, Any]:
    """What ``config.json`` records about a run (compared on resume by `check_resume_config`)."""
    return {
        "method": method.name, "base_method": method.base, "seed": seed, "run": run_name,
        "run_config": config.to_dict(),
        "method_config": None if method.config is None else dataclasses.asdict(method.config),
        "model_config": dataclasses.asdict(get_model_config(config.model, dict(method.model))),
    }


def normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as it reads back from JSON (tuples become lists, non-JSON values strings)."""
    return json.loads(json.dumps(record, sort_keys=True, default=str))


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _user_name(section: str, field: str, method: str) -> str:
    if section == "run_config":
        return field
    if section == "method_config":
        return f"method_overrides.{method}.{field}"
    return f"{section}.{field}" if field else section


def config_changes(stored: Mapping[str, Any], record: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Fields whose value differs between a stored ``config.json`` and a new record, as (dotted name, old, new).

    Names are those of the config file (``train.epochs``, ``method_overrides.ckda.beta``); ``model_config.*`` are
    fields of the resolved model preset.
    """
    new = normalise(record)
    method = str(new.get("method", stored.get("method", "?")))
    changes = []
    for section in COMPARED_KEYS:
        old_flat: dict[str, Any] = {}
        new_flat: dict[str, Any] = {}
        _flatten(stored.get(section), "", old_flat)
        _flatten(new.get(section), "", new_flat)
        for field in sorted(set(old_flat) | set(new_flat)):
            old, value = old_flat.get(field, "<absent>"), new_flat.get(field, "<absent>")
            if old == "<absent>" and section == "run_config" and _added_later_with_default(field, value):
                continue  # a field added after the run started, at the value the run used
            if old != value and (section, field) not in RESULT_NEUTRAL:
                changes.append((_user_name(section, field, method), old, value))
    return changes


ADDED_RUN_CONFIG_SECTIONS: tuple[str, ...] = ("readers.",)
"""`RunConfig` fields added after runs were started: an older ``config.json`` without them ran at their defaults."""


def _added_later_with_default(field: str, value: Any) -> bool:
    if not field.startswith(ADDED_RUN_CONFIG_SECTIONS):
        return False
    from ckda_avalanche.runner.config import RunConfig

    defaults: dict[str, Any] = {}
    _flatten(normalise({"run_config": RunConfig().to_dict()})["run_config"], "", defaults)
    return field in defaults and defaults[field] == value


RESULT_NEUTRAL: frozenset[tuple[str, str]] = frozenset({("run_config", "train.num_workers")})
"""(section, dotted field) pairs that change speed only, never metrics: every loader draws its batches and
augmentation from its own generator, whatever the worker count (docs/data_path.md), so resuming with another value
is not a change of settings (run folders started with the old default 0 resume under "auto")."""


def format_changes(changes: list[tuple[str, Any, Any]], *, limit: int = 8) -> str:
    """One line: ``train.epochs 20 -> 1, eval_mb_size 64 -> 32`` (at most ``limit`` fields, then a count)."""
    shown = [f"{name} {json.dumps(old)} -> {json.dumps(new)}" for name, old, new in changes[:limit]]
    if len(changes) > limit:
        shown.append(f"and {len(changes) - limit} more")
    return ", ".join(shown)


def load_config_record(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run folder's ``config.json`` (None when absent); `RunStateError` when unreadable."""
    path = Path(run_dir) / CONFIG_JSON
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunStateError(f"{path}: unreadable ({exc}); cannot check that --resume uses the run's settings") from exc
    if not isinstance(data, dict):
        raise RunStateError(f"{path}: expected a JSON object")
    return data


def resume_config_problem(run_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> str | None:
    """Why resuming ``run_dir`` with ``record`` would mix settings (None when it would not); no writes."""
    path = Path(run_dir) / CONFIG_JSON
    stored = load_config_record(run_dir)
    if stored is None:
        return (f"{path}: missing, so the settings this run started with are unknown; pass --resume-override to "
                f"continue with the current settings (they will be recorded)")
    changes = config_changes(stored, record)
    if not changes:
        return None
    return (f"{path}: --resume with different settings: {format_changes(changes)}; resume with the run's settings, "
            f"or pass --resume-override to continue with the new ones (recorded in config.json)")


def check_resume_config(run_dir: str | os.PathLike[str], record: Mapping[str, Any], *, override: bool,
                        sessions_done: int) -> str:
    """Refuse (`RunStateError`) to resume ``run_dir`` with settings other than its ``config.json``'s, unless
    ``override``: then record the new settings and which fields changed after session ``sessions_done``.

    Returns the run name recorded at the start (the CSV's ``run`` column keeps it even if the folder was renamed).
    """
    problem = resume_config_problem(run_dir, record)
    stored = load_config_record(run_dir) or {}
    run_name = str(stored.get("run", record.get("run")))
    if problem is None:
        return run_name
    if not override:
        raise RunStateError(problem)
    changes = config_changes(stored, record) if stored else []
    updated = {**stored, **normalise({k: record[k] for k in COMPARED_KEYS if k in record}), "run": run_name}
    history = list(stored.get("overrides", []))
    history.append({"after_session": int(sessions_done),
                    "changed": {name: [old, new] for name, old, new in changes} if stored else "config.json was "
                               "missing; recorded the settings of the resumed process"})
    updated["overrides"] = history
    atomic_write_json(Path(run_dir) / CONFIG_JSON, updated)
    logger.warning("%s: resumed after session %d with changed settings (%s); recorded in %s", run_dir, sessions_done,
                   format_changes(changes) if changes else "config.json was missing", CONFIG_JSON)
    return run_name


def csv_snapshot(csv_path: str | os.PathLike[str]) -> str:
    """The text of the tidy CSV, to be stored in the checkpoint written right after it."""
    return Path(csv_path).read_text(encoding="utf-8")


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _backup(path: Path) -> Path:
    backup = path.with_name(path.name + ".bak")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak{n}")
        n += 1
    os.replace(path, backup)
    return backup


def _split(rows: list[list[str]], protocol: str | None) -> tuple[list[list[str]], list[list[str]]]:
    """(rows training wrote, rows of other protocols) of a CSV's data rows; all are training's when protocol is None."""
    column = TIDY_COLUMNS.index("protocol")
    own = [r for r in rows if protocol is None or (len(r) > column and r[column] == protocol)]
    return own, [r for r in rows if not (protocol is None or (len(r) > column and r[column] == protocol))]


def _union(first: list[list[str]], second: list[list[str]]) -> list[list[str]]:
    """``first`` then the rows of ``second`` whose key (every column but value) ``first`` lacks."""
    value = TIDY_COLUMNS.index("value")
    keys = {tuple(r[:value]) for r in first}
    return first + [r for r in second if tuple(r[:value]) not in keys]


def rescored_rows(run_dir: str | os.PathLike[str]) -> list[list[str]]:
    """The rows `keep_rescored_rows` kept for ``run_dir`` (none when the file is absent or unreadable)."""
    path = Path(run_dir) / RESCORED_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [[str(v) for v in row] for row in data["rows"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [r for r in rows if len(r) == len(TIDY_COLUMNS)]


def keep_rescored_rows(run_dir: str | os.PathLike[str], rows: list[list[str]], *, protocol: str) -> int:
    """Add the rows among ``rows`` whose protocol is not the run's ``protocol`` to ``RESCORED_JSON`` (a row with the
    key of a kept one replaces it); returns how many rows the file keeps."""
    column, value = TIDY_COLUMNS.index("protocol"), TIDY_COLUMNS.index("value")
    new = [list(map(str, r)) for r in rows if str(r[column]) != protocol]
    if not new:
        return len(rescored_rows(run_dir))
    keys = {tuple(r[:value]) for r in new}
    merged = [r for r in rescored_rows(run_dir) if tuple(r[:value]) not in keys] + new
    atomic_write_json(Path(run_dir) / RESCORED_JSON, {"columns": list(TIDY_COLUMNS), "rows": merged})
    return len(merged)


def restore_csv(csv_path: str | os.PathLike[str], checkpoint: Mapping[str, Any] | None, *,
                checkpoint_path: str | os.PathLike[str], protocol: str | None = None) -> None:
    """Make the rows training wrote in ``csv_path`` exactly those of the sessions the checkpoint finished, before a
    resume, and keep every other row.

    ``protocol``: the run's own protocol. Training writes only rows of that protocol; rows with another protocol
    value (``full``, ``paper@regdb+llcm``: written by ``ckda eval``, `runner.reevaluate`) are not training's, so they
    are never dropped: they survive the truncation and a restore of the checkpoint's copy (the copy's own such rows
    are added back when the file lost them). None treats every row as training's.

    - no checkpoint (the first session never finished): drop every training row (a CSV that cannot be read is set
      aside as ``metrics.csv.bak``);
    - otherwise keep training rows with ``train_exp <= sessions_done``; if the CSV is missing, unreadable or its
      training rows differ from those of the checkpoint's copy (`CSV_KEY`), write that copy's training rows back
      with the file's other rows (the differing file is kept as ``.bak``) with a warning;
    - an older checkpoint without a copy and no readable CSV: `RunStateError` (nothing to rebuild the scores from).
    """
    path = Path(csv_path)
    done = 0 if checkpoint is None else int(checkpoint["sessions_done"])
    snapshot = None if checkpoint is None else checkpoint.get(CSV_KEY)
    snap_own, snap_other = _split(_rows(snapshot)[1:], protocol) if snapshot is not None else ([], [])
    readable = False
    if path.exists():
        try:
            tidy_rows_from_csv(path)
            readable = True
        except ValueError as exc:
            if snapshot is None and done > 0:
                raise RunStateError(f"{path}: unreadable ({exc}) and {checkpoint_path} holds no copy of it (written "
                                    f"by an older version); repair the CSV or delete {path.parent} to rerun") from exc
            backup = _backup(path)
            logger.warning("%s: unreadable (%s); set aside as %s", path, exc, backup.name)
    if readable:
        rows = _rows(path.read_text(encoding="utf-8"))
        header, body = rows[0], rows[1:]
        own, other = _split(body, protocol)
        exp, column = TIDY_COLUMNS.index("train_exp"), TIDY_COLUMNS.index("protocol")
        # rows of a session that did not reach its checkpoint go; rows of other protocols stay where they are
        kept = [r for r in body if int(r[exp]) <= done or (protocol is not None and r[column] != protocol)]
        kept_own = [r for r in own if int(r[exp]) <= done]
        if snapshot is None or kept_own == snap_own:
            if len(kept) != len(body):
                rewrite_csv_rows(path, header, kept)
            return
        backup = _backup(path)
        kept_aside = [r for r in rescored_rows(path.parent) if protocol is not None and r[column] != protocol]
        atomic_write_text(path, _csv_text(snap_own + _union(_union(other, snap_other), kept_aside)))
        kept_note = f", keeping its {len(other)} row(s) of other protocols (ckda eval)" if other else ""
        logger.warning("%s: rows of sessions 1-%d differed from the copy in %s; restored that copy%s (the previous "
                       "file is kept as %s)", path, done, Path(checkpoint_path).name, kept_note, backup.name)
        return
    if done == 0:
        return  # the first session starts over: the logger writes a new CSV
    if snapshot is None:
        raise RunStateError(f"{path}: missing, and {checkpoint_path} (written by an older version) holds no copy of "
                            f"its {done} finished session(s); restore metrics.csv from a backup, or delete "
                            f"{path.parent} to rerun")
    column = TIDY_COLUMNS.index("protocol")
    kept_aside = [r for r in rescored_rows(path.parent) if protocol is not None and r[column] != protocol]
    rebuilt = snap_own + _union(snap_other, kept_aside)
    atomic_write_text(path, _csv_text(rebuilt))
    logger.warning("%s: missing; rebuilt %d rows of sessions 1-%d from %s%s", path, len(rebuilt), done,
                   Path(checkpoint_path).name, f" and {RESCORED_JSON}" if kept_aside else "")


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(TIDY_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()
