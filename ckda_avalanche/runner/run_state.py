"""What a resumed run checks and repairs in its folder: the recorded configuration and the tidy CSV.

- ``config.json`` records the configuration a run started with. Resuming with a different configuration would mix
  sessions trained under two settings in one result, so `check_resume_config` refuses with a one-line diff of the
  fields, unless the caller asks to override; the override is then recorded in ``config.json`` (the new settings,
  plus an ``overrides`` list saying after which session what changed).
- ``metrics.csv`` is rebuilt from the checkpoint: every checkpoint holds a copy of the CSV as it was when the
  checkpoint was written (key `CSV_KEY`). `restore_csv` puts that copy back when the CSV is missing, unreadable or
  differs from it (the differing file is kept as ``metrics.csv.bak``), and refuses clearly when an older checkpoint
  has no copy.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckda_avalanche.evaluation.tidy_logger import tidy_rows_from_csv, truncate_after_train_exp
from ckda_avalanche.runner.atomic import atomic_write_json, atomic_write_text

__all__ = [
    "COMPARED_KEYS", "CONFIG_JSON", "CSV_KEY", "RunStateError", "check_resume_config", "config_changes",
    "csv_snapshot", "format_changes", "load_config_record", "normalise", "restore_csv", "resume_config_problem",
]

logger = logging.getLogger("ckda_avalanche.runner")

CONFIG_JSON = "config.json"
"""File name of the recorded configuration inside a run folder (``OUT/<method>/seed<k>/``)."""
CSV_KEY = "tidy_csv"
"""Checkpoint key holding the text of ``metrics.csv`` as of that checkpoint."""
COMPARED_KEYS: tuple[str, ...] = ("method", "seed", "run_config", "method_config", "model_config")
"""Entries of ``config.json`` that must match on resume (``run``, the CSV's run name, is kept from the start)."""


class RunStateError(RuntimeError):
    """A run folder's recorded state does not allow the requested resume; the message says why and what to do."""


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
            if old != value and (section, field) not in RESULT_NEUTRAL:
                changes.append((_user_name(section, field, method), old, value))
    return changes


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


def restore_csv(csv_path: str | os.PathLike[str], checkpoint: Mapping[str, Any] | None, *,
                checkpoint_path: str | os.PathLike[str]) -> None:
    """Make ``csv_path`` hold exactly the rows of the sessions the checkpoint finished, before a resume.

    - no checkpoint (the first session never finished): drop every row (a CSV that cannot be read is set aside as
      ``metrics.csv.bak``);
    - otherwise keep rows with ``train_exp <= sessions_done``; if the CSV is missing, unreadable or differs from the
      checkpoint's copy (`CSV_KEY`), write that copy back (a differing file is kept as ``.bak``) with a warning;
    - an older checkpoint without a copy and no readable CSV: `RunStateError` (nothing to rebuild the scores from).
    """
    path = Path(csv_path)
    done = 0 if checkpoint is None else int(checkpoint["sessions_done"])
    snapshot = None if checkpoint is None else checkpoint.get(CSV_KEY)
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
        truncate_after_train_exp(path, done)
        if snapshot is None or _rows(path.read_text(encoding="utf-8")) == _rows(snapshot):
            return
        backup = _backup(path)
        atomic_write_text(path, snapshot)
        logger.warning("%s: rows of sessions 1-%d differed from the copy in %s; restored that copy (the previous "
                       "file is kept as %s)", path, done, Path(checkpoint_path).name, backup.name)
        return
    if done == 0:
        return  # the first session starts over: the logger writes a new CSV
    if snapshot is None:
        raise RunStateError(f"{path}: missing, and {checkpoint_path} (written by an older version) holds no copy of "
                            f"its {done} finished session(s); restore metrics.csv from a backup, or delete "
                            f"{path.parent} to rerun")
    atomic_write_text(path, snapshot)
    logger.warning("%s: missing; rebuilt %d rows of sessions 1-%d from %s", path, len(_rows(snapshot)) - 1, done,
                   Path(checkpoint_path).name)

