"""Run one (method, seed) over the VI-LReID stream, with a checkpoint after every session and exact resume.

Layout of a run folder (``OUT/<method>/seed<k>/``):

- ``metrics.csv``: the tidy long-form CSV (`ckda_avalanche.evaluation.tidy_logger`), appended after every evaluation;
- ``config.json``: the resolved `RunConfig`, method config and model config; ``data.json``: the data root and a
  fingerprint of the data read (`runner.data_record`); ``env.json``: versions, commit, device,
  CPU model and bf16 support, the autocast dtype used (the CSV also gets a ``precision/<name>`` row per session);
- ``checkpoint.pt``: the strategy's ``state_dict()`` (model, plugin state: teachers, prototypes, exemplars; the
  Avalanche clock and the metric history), the number of finished sessions, the training time per session and a
  copy of ``metrics.csv`` (`run_state.CSV_KEY`), rewritten atomically after every session. Checkpoints written
  before the strategy state held the clock and the metric history (a separate ``"metric"`` entry) are converted;
- ``state.json``: a human-readable copy of the progress (finished sessions, training seconds per session).
- ``sessions/session<k>.pt`` (``keep_sessions=True``, ``ckda run --keep-session-checkpoints``): the model evaluated
  after each session, for re-scoring without training (`runner.session_models`, `runner.reevaluate`).

``method`` may be a variant such as ``ckda[no_cka+no_merge]`` (`runner.variants`): it runs its base strategy with
the variant's config, and its name is the folder name and the CSV's ``method`` value.

Determinism: every session starts by re-seeding Python, NumPy and torch from ``(seed, session)``, and the sampler is
seeded the same way, so a run resumed from the checkpoint of session s trains session s+1 exactly as the
uninterrupted run does. A run killed at any point (even SIGKILL) loses at most the session in progress: the checkpoint
and ``state.json`` are replaced atomically, and rows the CSV received after the last checkpoint are dropped on resume.

Resume guards (`run_state`, `data_record`): a resume whose settings differ from ``config.json``, or whose data
differs from ``data.json``, is refused with a diff of the fields unless ``override=True`` (then recorded); a
checkpoint whose archive checksums fail is refused with one line naming it; a missing or damaged ``metrics.csv`` is
rebuilt from the checkpoint's copy (rows of other protocols, from ``ckda eval``, are kept). Crash points for tests:
`fault_injection` (``CKDA_KILL_AT``).
"""
from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.benchmarks.file_integrity import torch_file_problem
from ckda_avalanche.evaluation import (
    TidyCSVLogger,
    append_extra_rows,
    reid_metrics,
)
from ckda_avalanche.models import create_model, get_model_config
from ckda_avalanche.plugins.grad_share import GradShareProbe
from ckda_avalanche.plugins.loss_terms import LossTermsPlugin
from ckda_avalanche.runner.atomic import atomic_torch_save, atomic_write_json
from ckda_avalanche.runner.config import RunConfig
from ckda_avalanche.runner.data_record import check_resume_data, data_record, write_data_record
from ckda_avalanche.runner.env_info import collect_env, precision_rows
from ckda_avalanche.runner.peak_memory import SessionPeakMemory
from ckda_avalanche.runner.fault_injection import fault_plugins, kill_point
from ckda_avalanche.runner.overrides import apply_overrides
from ckda_avalanche.runner.progress import EpochProgressPlugin
from ckda_avalanche.runner.run_state import CSV_KEY, check_resume_config, csv_snapshot, restore_csv
from ckda_avalanche.runner.session_models import save_session_model
from ckda_avalanche.runner.variants import base_method, resolve_method
from ckda_avalanche.strategies import STRATEGIES, get_method, resolve_device
from ckda_avalanche.strategies.state import upgrade_legacy_state

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"


class RunExistsError(RuntimeError):
    """The run folder already holds results and neither ``resume`` nor a new folder was asked for."""


class RunFailedError(RuntimeError):
    """Training stopped (e.g. a non-finite loss); the message names the method, seed, session and step."""


@dataclass(frozen=True)
class RunSpec:
    """One (method, seed) of a leaderboard run."""

    method: str
    """Method name (a key of ``ckda_avalanche.strategies.STRATEGIES``)."""
    seed: int
    """Seed of model initialisation, sampling and augmentation."""
    run_name: str
    """Name recorded in the CSV's ``run`` column (the output folder's name)."""
    run_dir: Path
    """Folder of this (method, seed): ``OUT/<method>/seed<seed>``."""
    config: RunConfig
    """The resolved run configuration."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def session_seed(seed: int, session: int) -> int:
    """Seed of session ``session`` of a run with ``seed`` (the sampler uses ``seed * 1000 + session`` too)."""
    return seed * 1000 + session


def method_config(method: str, config: RunConfig) -> Any | None:
    """The method's config dataclass with ``config.method_overrides[base]`` and, for a variant such as
    ``ckda[no_msp]``, the variant's items applied (`runner.variants`); None for a method without one."""
    base = base_method(method)
    return resolve_method(method, config.method_overrides.get(base)).config


def stream_overrides(method_cfg: Any | None) -> dict[str, Any]:
    """Stream-level switches a method config asks for (CKDA's published data quirks), else none."""
    get = getattr(method_cfg, "stream_overrides", None)
    return dict(get()) if callable(get) else {}


def model_overrides(method_cfg: Any | None) -> dict[str, Any]:
    """Model-level switches a method config asks for (e.g. CKDA's ``no_msp`` -> ``use_msp=False``), else none."""
    get = getattr(method_cfg, "model_overrides", None)
    return dict(get()) if callable(get) else {}


def build_model(spec: RunSpec, method_cfg: Any | None) -> torch.nn.Module:
    """The run's model, with the method's model-level ablations (e.g. CKDA's ``no_msp``) applied."""
    return create_model(spec.config.model, spec.config.pretrained or False,
                        config_overrides=model_overrides(method_cfg))


def config_record(spec: RunSpec, method_cfg: Any | None) -> dict[str, Any]:
    """What ``config.json`` records about a run (compared on resume by `run_state.check_resume_config`)."""
    return {
        "method": spec.method, "base_method": base_method(spec.method), "seed": spec.seed, "run": spec.run_name,
        "run_config": spec.config.to_dict(),
        "method_config": None if method_cfg is None else dataclasses.asdict(method_cfg),
        "model_config": dataclasses.asdict(get_model_config(spec.config.model, model_overrides(method_cfg))),
    }


def _read_checkpoint(path: Path) -> dict[str, Any]:
    problem = torch_file_problem(path)  # torch.load itself ignores the archive's checksums
    if problem is not None:
        raise RunExistsError(f"{path}: damaged checkpoint, {problem}; restore it from a backup, or delete it to "
                             f"train this run again from session 1 (--resume then keeps nothing of it)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a corrupt file gets one clear message
        raise RunExistsError(f"{path}: cannot read the checkpoint ({exc}); remove it to start this run again") from exc
    for key in ("strategy", "sessions_done", "train_time_s"):
        if key not in state:
            raise RunExistsError(f"{path}: not a ckda checkpoint (missing {key!r})")
    if "metric" in state:  # written before the strategy state held the clock and the metric history
        legacy = list(state.pop("metric"))
        if len(legacy) != 1:
            raise RunExistsError(f"{path}: expected one metric state in the old 'metric' entry, got {len(legacy)}")
        state["strategy"] = upgrade_legacy_state(state["strategy"],
                                                 metric_states={"ReIDRetrievalPluginMetric": legacy[0]})
    return state


OWNER_KEY = "run"
"""Checkpoint key naming the run it belongs to (``{"method": ..., "seed": ...}``), checked on resume."""


def _check_checkpoint_owner(path: Path, checkpoint: dict[str, Any], spec: RunSpec) -> None:
    owner = checkpoint.get(OWNER_KEY)
    if owner is None:  # written before checkpoints named their run
        return
    mine = {"method": spec.method, "seed": spec.seed}
    if {"method": owner.get("method"), "seed": owner.get("seed")} != mine:
        raise RunExistsError(f"{path}: holds the state of {owner.get('method')} seed {owner.get('seed')}, not of this "
                             f"folder's run ({spec.method} seed {spec.seed}): a checkpoint copied from another run? "
                             f"put the right one back, or delete it to train this run again from session 1")


def budget_rows(strategy: Any, method: str) -> list[dict[str, Any]]:
    """``train_steps`` (optimiser steps of the session just trained) and, for a reference upper bound (registered
    so, as Joint is, or a strategy class that says so), ``upper_bound`` = 1.0."""
    rows: list[dict[str, Any]] = [{"metric": "train_steps", "value": float(strategy.train_steps)}]
    if get_method(base_method(method)).upper_bound or getattr(strategy, "upper_bound", False):
        rows.append({"metric": "upper_bound", "value": 1.0})
    return rows


def run_single(spec: RunSpec, benchmark: Any, *, resume: bool, device: str = "auto", progress: bool = True,
               keep_sessions: bool = False, override: bool = False, loggers: Sequence[Any] = (),
               plugins: Sequence[Any] = (), data_root: str | Path | None = None,
               compile_model: bool = False) -> Path:
    """Train and evaluate ``spec.method`` with ``spec.seed`` over ``benchmark``; return the tidy CSV path.

    After each session the model is evaluated on every dataset of the stream, the CSV gains that evaluation's rows
    plus ``train_time_s``, ``train_steps`` (and ``upper_bound`` for Joint), ``loss/<term>`` (per-session mean of
    each unweighted loss term), ``grad_share/<point>/<term>``, ``grad_proj/<point>/<term>`` and
    ``grad_norm/<point>/total`` (`plugins.grad_share`), ``precision/<name>`` and ``memory_bytes/<kind>`` rows,
    the measured peaks (``peak_rss_bytes``, and on CUDA ``peak_gpu_*_bytes``: `runner.peak_memory`), and the
    checkpoint is replaced. ``keep_sessions`` also keeps the evaluated model of
    every session (`runner.session_models`, for ``ckda eval``). ``override``: resume even when the settings differ
    from the run's ``config.json`` (the change is recorded there). ``loggers`` are extra Avalanche loggers next to
    the tidy CSV (e.g. TensorBoard); ``plugins`` are extra stateless plugins (they must not have ``state_dict``, or
    checkpoints would depend on them). ``data_root``: the folder the benchmark's datasets were read from, recorded
    with a fingerprint of the data in ``data.json`` (`runner.data_record`); a resume on other data is refused
    unless ``override``.
    """
    run_dir = spec.run_dir
    csv_path, ckpt_path = run_dir / METRICS, run_dir / CHECKPOINT
    sessions = len(benchmark.train_stream)
    checkpoint: dict[str, Any] | None = None
    if ckpt_path.exists() or csv_path.exists():
        if not resume:
            raise RunExistsError(
                f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out"
            )
        if ckpt_path.exists():
            checkpoint = _read_checkpoint(ckpt_path)
            _check_checkpoint_owner(ckpt_path, checkpoint, spec)
    done = 0 if checkpoint is None else int(checkpoint["sessions_done"])
    method_cfg = method_config(spec.method, spec.config)
    data = data_record(benchmark, data_root)
    if checkpoint is not None:  # same settings as config.json (or an explicit override); keep the CSV's run name
        run_name = check_resume_config(run_dir, config_record(spec, method_cfg), override=override, sessions_done=done)
        spec = dataclasses.replace(spec, run_name=run_name)
        check_resume_data(run_dir, data, override=override, sessions_done=done)  # and the same data
    if resume:  # drop rows of a session that did not reach its checkpoint; rebuild a missing CSV from the checkpoint
        restore_csv(csv_path, checkpoint, checkpoint_path=ckpt_path, protocol=spec.config.protocol)
    if done >= sessions:
        return csv_path  # finished earlier: nothing to redo

    seed_everything(spec.seed)
    model = build_model(spec, method_cfg)
    resolved_device = resolve_device(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        atomic_write_json(run_dir / "config.json", config_record(spec, method_cfg))
        write_data_record(run_dir, data)

    metrics = reid_metrics(progress=progress)
    loss_terms = LossTermsPlugin()
    grad_probe = GradShareProbe()
    logger = TidyCSVLogger(csv_path, run=spec.run_name, method=spec.method, seed=spec.seed,
                           dataset_names=list(benchmark.reid_datasets), protocol=spec.config.protocol, mode="append")
    train_cfg = dataclasses.replace(spec.config.train, seed=spec.seed)
    progress_bar = [EpochProgressPlugin(label=f"{spec.method} seed {spec.seed}")] if progress else []
    strategy_kwargs: dict[str, Any] = dict(
        model=model, config=train_cfg, eval_mb_size=spec.config.eval_mb_size, device=resolved_device,
        evaluator=EvaluationPlugin(*metrics, loggers=[logger, *loggers]),
        plugins=[loss_terms, grad_probe, *progress_bar, *fault_plugins(), *plugins],
    )
    if method_cfg is not None:
        strategy_kwargs["method"] = method_cfg
    strategy = STRATEGIES[base_method(spec.method)](**strategy_kwargs)
    if compile_model:
        strategy.compile_model()  # speed only: the model, its checkpoints and its copies stay plain modules
    if checkpoint is None:
        atomic_write_json(run_dir / "env.json", collect_env(resolved_device, amp_dtype=strategy.amp_dtype))
    times: list[float] = []
    if checkpoint is not None:
        strategy.load_state_dict(checkpoint["strategy"])
        times = list(checkpoint["train_time_s"])

    peaks = SessionPeakMemory(resolved_device)
    for session in range(done, sessions):
        seed_everything(session_seed(spec.seed, session))
        kill_point(f"session{session + 1}:start")
        peaks.start()
        start = time.perf_counter()
        try:
            strategy.train(benchmark.train_stream[session])
        except FloatingPointError as exc:
            raise RunFailedError(f"method {spec.method!r}, seed {spec.seed}: {exc}") from exc
        times.append(time.perf_counter() - start)
        kill_point(f"session{session + 1}:trained")
        strategy.eval(benchmark.test_stream)
        trained = session + 1
        kill_point(f"session{trained}:evaluated")
        rows = [{"metric": "train_time_s", "value": times[-1]}, *budget_rows(strategy, spec.method)]
        rows += [{"metric": f"loss/{name}", "value": value} for name, value in loss_terms.session_means.items()]
        rows += [{"metric": name, "value": value} for name, value in grad_probe.session_rows.items()]
        rows += precision_rows(strategy.amp_dtype)
        rows += [{"metric": f"memory_bytes/{kind}", "value": float(size)}
                 for kind, size in sorted(strategy.memory_report().items())]
        rows += peaks.rows()  # measured peaks of this session's training and evaluation (runner/peak_memory.py)
        append_extra_rows(csv_path, [
            {"run": spec.run_name, "method": spec.method, "seed": spec.seed, "train_exp": trained,
             "eval_dataset": "-", "protocol": spec.config.protocol, "trial": "-", **row} for row in rows
        ])
        kill_point(f"session{trained}:rows")
        if keep_sessions:  # before the checkpoint: a run killed in between redoes (and re-saves) this session
            save_session_model(run_dir, trained, strategy.model)
        atomic_torch_save(ckpt_path, {"strategy": strategy.state_dict(), "sessions_done": trained,
                                      "train_time_s": times, CSV_KEY: csv_snapshot(csv_path),
                                      OWNER_KEY: {"method": spec.method, "seed": spec.seed}})
        kill_point(f"session{trained}:checkpoint")
        atomic_write_json(run_dir / "state.json", {
            "sessions_done": trained, "sessions_total": sessions, "train_time_s": times,
            "datasets": list(benchmark.reid_datasets), "csv_in_checkpoint": True,
        })
        kill_point(f"session{trained}:state")
    return csv_path
