"""Run one (method, seed) over the VI-LReID stream, with a checkpoint after every session and exact resume.

Layout of a run folder (``OUT/<method>/seed<k>/``):

- ``metrics.csv``: the tidy long-form CSV (`ckda_avalanche.evaluation.tidy_logger`), appended after every evaluation;
- ``config.json``: the resolved `RunConfig`, method config and model config; ``env.json``: versions, commit, device;
- ``checkpoint.pt``: strategy state (model + plugin state: teachers, prototypes, exemplars), metric history and the
  number of finished sessions, rewritten atomically after every session;
- ``state.json``: a human-readable copy of the progress (finished sessions, training seconds per session).

Determinism: every session starts by re-seeding Python, NumPy and torch from ``(seed, session)``, and the sampler is
seeded the same way, so a run resumed from the checkpoint of session s trains session s+1 exactly as the
uninterrupted run does. A run killed at any point (even SIGKILL) loses at most the session in progress: the checkpoint
and ``state.json`` are replaced atomically, and rows the CSV received after the last checkpoint are dropped on resume.
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

from ckda_avalanche.evaluation import (
    TidyCSVLogger,
    append_extra_rows,
    reid_metrics,
    truncate_after_train_exp,
)
from ckda_avalanche.models import create_model, get_model_config
from ckda_avalanche.runner.atomic import atomic_torch_save, atomic_write_json
from ckda_avalanche.runner.config import RunConfig
from ckda_avalanche.runner.env_info import collect_env
from ckda_avalanche.runner.overrides import apply_overrides
from ckda_avalanche.runner.progress import EpochProgressPlugin
from ckda_avalanche.strategies import METHOD_CONFIGS, STRATEGIES, resolve_device

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
    """The method's config dataclass with ``config.method_overrides[method]`` applied (None if it has none)."""
    if method not in STRATEGIES:
        raise ValueError(f"unknown method {method!r}; available: {sorted(STRATEGIES)}")
    overrides = config.method_overrides.get(method, {})
    if method not in METHOD_CONFIGS:
        if overrides:
            raise ValueError(f"method_overrides.{method}: method {method!r} has no configuration to override")
        return None
    return apply_overrides(METHOD_CONFIGS[method](), overrides, where=f"method_overrides.{method}")


def stream_overrides(method_cfg: Any | None) -> dict[str, Any]:
    """Stream-level switches a method config asks for (CKDA's published data quirks), else none."""
    get = getattr(method_cfg, "stream_overrides", None)
    return dict(get()) if callable(get) else {}


def build_model(spec: RunSpec, method_cfg: Any | None) -> torch.nn.Module:
    """The run's model, with the method's model-level ablations (e.g. CKDA's ``no_msp``) applied."""
    get = getattr(method_cfg, "model_overrides", None)
    overrides = dict(get()) if callable(get) else {}
    return create_model(spec.config.model, spec.config.pretrained or False, config_overrides=overrides)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a corrupt file gets one clear message
        raise RunExistsError(f"{path}: cannot read the checkpoint ({exc}); remove it to start this run again") from exc
    for key in ("strategy", "metric", "sessions_done", "train_time_s"):
        if key not in state:
            raise RunExistsError(f"{path}: not a ckda checkpoint (missing {key!r})")
    return state


def run_single(spec: RunSpec, benchmark: Any, *, resume: bool, device: str = "auto", progress: bool = True,
               loggers: Sequence[Any] = (), plugins: Sequence[Any] = ()) -> Path:
    """Train and evaluate ``spec.method`` with ``spec.seed`` over ``benchmark``; return the tidy CSV path.

    After each session the model is evaluated on every dataset of the stream, the CSV gains that evaluation's rows
    plus ``train_time_s`` and ``memory_bytes/<kind>`` rows, and the checkpoint is replaced. ``loggers`` are extra
    Avalanche loggers next to the tidy CSV (e.g. TensorBoard); ``plugins`` are extra stateless plugins (they must
    not have ``state_dict``, or checkpoints would depend on them).
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
            if checkpoint["sessions_done"] >= sessions:
                return csv_path  # finished earlier: nothing to redo
    done = 0 if checkpoint is None else int(checkpoint["sessions_done"])
    if csv_path.exists():
        truncate_after_train_exp(csv_path, done)  # drop rows of a session that did not reach its checkpoint

    method_cfg = method_config(spec.method, spec.config)
    seed_everything(spec.seed)
    model = build_model(spec, method_cfg)
    resolved_device = resolve_device(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        atomic_write_json(run_dir / "config.json", {
            "method": spec.method, "seed": spec.seed, "run": spec.run_name,
            "run_config": spec.config.to_dict(),
            "method_config": None if method_cfg is None else dataclasses.asdict(method_cfg),
            "model_config": dataclasses.asdict(get_model_config(spec.config.model)),
        })
        atomic_write_json(run_dir / "env.json", collect_env(resolved_device))

    metrics = reid_metrics(progress=progress)
    logger = TidyCSVLogger(csv_path, run=spec.run_name, method=spec.method, seed=spec.seed,
                           dataset_names=list(benchmark.reid_datasets), protocol=spec.config.protocol)
    train_cfg = dataclasses.replace(spec.config.train, seed=spec.seed)
    strategy_kwargs: dict[str, Any] = dict(
        model=model, config=train_cfg, eval_mb_size=spec.config.eval_mb_size, device=resolved_device,
        evaluator=EvaluationPlugin(*metrics, loggers=[logger, *loggers]),
        plugins=[*([EpochProgressPlugin(label=f"{spec.method} seed {spec.seed}")] if progress else []),
                 *plugins] or None,
    )
    if method_cfg is not None:
        strategy_kwargs["method"] = method_cfg
    strategy = STRATEGIES[spec.method](**strategy_kwargs)
    times: list[float] = []
    if checkpoint is not None:
        strategy.load_state_dict(checkpoint["strategy"])
        strategy.clock.train_exp_counter = done
        for metric, state in zip(metrics, checkpoint["metric"]):
            metric.load_state_dict(state)
        times = list(checkpoint["train_time_s"])

    for session in range(done, sessions):
        seed_everything(session_seed(spec.seed, session))
        start = time.perf_counter()
        try:
            strategy.train(benchmark.train_stream[session])
        except FloatingPointError as exc:
            raise RunFailedError(f"method {spec.method!r}, seed {spec.seed}: {exc}") from exc
        times.append(time.perf_counter() - start)
        strategy.eval(benchmark.test_stream)
        trained = session + 1
        rows = [{"metric": "train_time_s", "value": times[-1]}]
        rows += [{"metric": f"memory_bytes/{kind}", "value": float(size)}
                 for kind, size in sorted(strategy.memory_report().items())]
        append_extra_rows(csv_path, [
            {"run": spec.run_name, "method": spec.method, "seed": spec.seed, "train_exp": trained,
             "eval_dataset": "-", "protocol": spec.config.protocol, "trial": "-", **row} for row in rows
        ])
        atomic_torch_save(ckpt_path, {
            "strategy": strategy.state_dict(), "metric": [m.state_dict() for m in metrics],
            "sessions_done": trained, "train_time_s": times,
        })
        atomic_write_json(run_dir / "state.json", {
            "sessions_done": trained, "sessions_total": sessions, "train_time_s": times,
            "datasets": list(benchmark.reid_datasets),
        })
    return csv_path

