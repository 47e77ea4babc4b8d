"""What `session_runner.run_single` reads from and writes to a run folder (``OUT/<method>/seed<k>/``).

- `open_run`: where a run starts. A folder that holds a run (`holds_run`: a checkpoint or a tidy CSV) is refused
  without ``resume`` (`refuse_existing`: the one "already holds a run" check, also made by `validate.validate_run`
  before a ``ckda run`` starts); with it, the checkpoint is read (archive checksums verified, older layouts
  converted, and it must name this run: `OWNER_KEY`), the data must match ``data.json`` (`data_record`) and the
  settings ``config.json`` (`run_state`) unless ``override``, and the tidy CSV is brought back to the checkpoint's
  copy. A start that has sessions left to train is recorded in ``attempts.jsonl`` (host, pid, executor, threads,
  sessions done): retries and resumes show there.
  A run that starts from session 1 gets its ``config.json`` and ``data.json`` here (``env.json`` follows when its
  strategy exists: `env_info.write_env`).
- `save_session`: after each session, the kept model (``--keep-session-checkpoints``), the checkpoint and
  ``state.json``, each replaced atomically, with the crash points of `fault_injection` in between.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ckda_avalanche.benchmarks.file_integrity import load_checked_torch_file
from ckda_avalanche.runner.atomic import atomic_torch_save, atomic_write_json
from ckda_avalanche.runner.data_record import check_resume_data, data_record, write_data_record
from ckda_avalanche.runner.fault_injection import kill_point
from ckda_avalanche.runner.run_state import (
    ATTEMPTS,
    CHECKPOINT,
    CONFIG_JSON,
    CSV_KEY,
    METRICS,
    check_resume_config,
    config_record,
    csv_snapshot,
    restore_csv,
)
from ckda_avalanche.runner.session_models import save_session_model
from ckda_avalanche.runner.task import RunTask
from ckda_avalanche.strategies.state import upgrade_legacy_state

__all__ = ["OWNER_KEY", "RunExistsError", "RunStart", "holds_run", "open_run", "read_checkpoint", "refuse_existing",
           "save_session"]

OWNER_KEY = "run"
"""Checkpoint key naming the run it belongs to (``{"method": ..., "seed": ...}``), checked on resume."""
STATE_JSON = "state.json"
"""Human-readable copy of a run's progress (finished sessions, training seconds per session)."""


class RunExistsError(RuntimeError):
    """The run folder already holds results and neither ``resume`` nor a new folder was asked for."""


def holds_run(run_dir: str | os.PathLike[str]) -> bool:
    """True when ``run_dir`` holds results: a checkpoint or a tidy CSV."""
    return (Path(run_dir) / CHECKPOINT).exists() or (Path(run_dir) / METRICS).exists()


def refuse_existing(run_dir: str | os.PathLike[str], *, resume: bool) -> None:
    """`RunExistsError` when ``run_dir`` holds a run and ``resume`` is off: the one "already holds a run" check."""
    if not resume and holds_run(run_dir):
        raise RunExistsError(f"{run_dir}: already holds a run; pass --resume to continue it, or choose another --out")


@dataclass(frozen=True)
class RunStart:
    """Where a run starts: what `open_run` found in its folder."""

    checkpoint: dict[str, Any] | None
    """The checkpoint read on resume (None: the run starts from session 1)."""
    done: int
    """Sessions finished before."""
    run_name: str
    """The CSV's ``run`` value: the one recorded when the run started (kept when the folder was renamed)."""


def read_checkpoint(path: Path, task: RunTask) -> dict[str, Any]:
    """The checkpoint at ``path`` (checksums verified, old layouts converted), refused unless it is ``task``'s."""
    state = load_checked_torch_file(
        path, what="checkpoint", error=RunExistsError, weights_only=False,
        damaged_hint="restore it from a backup, or delete it to train this run again from session 1 (--resume then "
                     "keeps nothing of it)",
        unreadable_hint="; remove it to start this run again")
    for key in ("strategy", "sessions_done", "train_time_s"):
        if key not in state:
            raise RunExistsError(f"{path}: not a ckda checkpoint (missing {key!r})")
    if "metric" in state:  # written before the strategy state held the clock and the metric history
        legacy = list(state.pop("metric"))
        if len(legacy) != 1:
            raise RunExistsError(f"{path}: expected one metric state in the old 'metric' entry, got {len(legacy)}")
        state["strategy"] = upgrade_legacy_state(state["strategy"],
                                                 metric_states={"ReIDRetrievalPluginMetric": legacy[0]})
    owner = state.get(OWNER_KEY)  # None: written before checkpoints named their run
    if owner is not None and {"method": owner.get("method"), "seed": owner.get("seed")} != {
            "method": task.name, "seed": task.seed}:
        raise RunExistsError(f"{path}: holds the state of {owner.get('method')} seed {owner.get('seed')}, not of this "
                             f"folder's run ({task.label}): a checkpoint copied from another run? "
                             f"put the right one back, or delete it to train this run again from session 1")
    return state


def open_run(task: RunTask, benchmark: Any) -> RunStart:
    """Check ``task``'s folder and find where the run starts (see the module docstring); a run that starts from
    session 1 gets its ``config.json`` and ``data.json`` here."""
    run_dir = task.run_dir
    ckpt_path = run_dir / CHECKPOINT
    refuse_existing(run_dir, resume=task.resume)
    checkpoint = read_checkpoint(ckpt_path, task) if ckpt_path.exists() else None
    done = 0 if checkpoint is None else int(checkpoint["sessions_done"])
    if done < len(benchmark.train_stream):  # a start with something to do is an attempt; a finished run's is not
        _record_attempt(task, done)
    record = config_record(task.method, seed=task.seed, run_name=task.run_name, config=task.config)
    run_name = task.run_name
    if checkpoint is not None:  # the same settings as config.json (or an explicit override); keep the CSV's run name
        run_name = check_resume_config(run_dir, record, override=task.override, sessions_done=done)
    data = data_record(benchmark, task.data_root)
    if checkpoint is not None:  # and the same data as data.json (or an explicit override)
        check_resume_data(run_dir, data, override=task.override, sessions_done=done)
    else:  # a run that starts from session 1 records its settings and data
        write_data_record(run_dir, data)
        atomic_write_json(run_dir / CONFIG_JSON, record)
    if task.resume:  # drop rows of a session that did not reach its checkpoint; rebuild a missing CSV from it
        restore_csv(run_dir / METRICS, checkpoint, checkpoint_path=ckpt_path, protocol=task.config.protocol)
    return RunStart(checkpoint=checkpoint, done=done, run_name=run_name)


def _record_attempt(task: RunTask, done: int) -> None:
    task.run_dir.mkdir(parents=True, exist_ok=True)
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "pid": os.getpid(),
             "executor": task.executor, "threads": torch.get_num_threads(), "sessions_done": done}
    with (task.run_dir / ATTEMPTS).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def save_session(task: RunTask, strategy: Any, *, trained: int, sessions: int, times: list[float],
                 datasets: list[str]) -> None:
    """After session ``trained`` of ``sessions``: the kept model, the checkpoint, then ``state.json``."""
    run_dir = task.run_dir
    if task.keep_sessions:  # before the checkpoint: a run killed in between redoes (and re-saves) this session
        save_session_model(run_dir, trained, strategy.model)
    atomic_torch_save(run_dir / CHECKPOINT, {"strategy": strategy.state_dict(), "sessions_done": trained,
                                             "train_time_s": times, CSV_KEY: csv_snapshot(run_dir / METRICS),
                                             OWNER_KEY: {"method": task.name, "seed": task.seed}})
    kill_point(f"session{trained}:checkpoint")
    atomic_write_json(run_dir / STATE_JSON, {
        "sessions_done": trained, "sessions_total": sessions, "train_time_s": times,
        "datasets": datasets, "csv_in_checkpoint": True,
    })
    kill_point(f"session{trained}:state")
