"""Train and evaluate the sessions of one opened run (`run_folder.open_run`): the model, the strategy with its
plugins, and per session the training, the evaluation, the run-level rows of the tidy CSV and the saved state
(`run_folder.save_session`). What a run does as a whole, and its folder, is described in `session_runner`.
"""
from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.training.plugins import EvaluationPlugin

from ckda_avalanche.evaluation import TidyCSVLogger, append_extra_rows, reid_metrics
from ckda_avalanche.models import create_model
from ckda_avalanche.plugins.grad_share import GradShareProbe
from ckda_avalanche.plugins.loss_terms import LossTermsPlugin
from ckda_avalanche.runner.env_info import precision_rows, write_env
from ckda_avalanche.runner.fault_injection import fault_plugins, kill_point
from ckda_avalanche.runner.loggers import make_loggers
from ckda_avalanche.runner.peak_memory import SessionPeakMemory
from ckda_avalanche.runner.progress import EpochProgressPlugin
from ckda_avalanche.runner.run_folder import RunStart, save_session
from ckda_avalanche.runner.run_state import METRICS
from ckda_avalanche.runner.task import RunTask
from ckda_avalanche.strategies import get_method, resolve_device

__all__ = ["RunFailedError", "build_model", "seed_everything", "session_seed", "train_sessions"]


class RunFailedError(RuntimeError):
    """Training stopped (e.g. a non-finite loss); the message names the method, seed, session and step."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def session_seed(seed: int, session: int) -> int:
    """Seed of session ``session`` of a run with ``seed`` (the sampler uses ``seed * 1000 + session`` too)."""
    return seed * 1000 + session


def build_model(task: RunTask) -> torch.nn.Module:
    """The run's model, with the method's model-level ablations (e.g. CKDA's ``no_msp``) applied."""
    return create_model(task.config.model, task.config.pretrained or False,
                        config_overrides=dict(task.method.model))


def train_sessions(task: RunTask, benchmark: Any, opened: RunStart, *, plugins: Sequence[Any] = ()) -> Path:
    """Train and evaluate the sessions of ``task`` left after ``opened`` (`run_folder.open_run`); return the tidy
    CSV path. The rows written per session are listed in `session_runner.run_single`; ``plugins`` are extra
    stateless plugins."""
    csv_path, sessions = task.run_dir / METRICS, len(benchmark.train_stream)
    if opened.done >= sessions:
        return csv_path  # finished earlier: nothing to redo
    seed_everything(task.seed)
    model = build_model(task)
    resolved_device = resolve_device(task.device)
    loggers = make_loggers(task)
    try:
        metrics = reid_metrics(progress=task.progress)
        loss_terms = LossTermsPlugin()
        grad_probe = GradShareProbe()
        logger = TidyCSVLogger(csv_path, run=opened.run_name, method=task.name, seed=task.seed,
                               dataset_names=list(benchmark.reid_datasets), protocol=task.config.protocol,
                               mode="append")
        train_cfg = dataclasses.replace(task.config.train, seed=task.seed)
        progress_bar = [EpochProgressPlugin(label=task.label)] if task.progress else []
        spec = get_method(task.method.base)
        strategy_kwargs: dict[str, Any] = dict(
            model=model, config=train_cfg, eval_mb_size=task.config.eval_mb_size, device=resolved_device,
            evaluator=EvaluationPlugin(*metrics, loggers=[logger, *loggers]),
            plugins=[loss_terms, grad_probe, *progress_bar, *fault_plugins(task.name, task.seed, task.fault),
                     *plugins],
        )
        if task.method.config is not None:
            strategy_kwargs["method"] = task.method.config
        strategy = spec.strategy(**strategy_kwargs)
        if task.compile_model:
            strategy.compile_model()  # speed only: the model, its checkpoints and its copies stay plain modules
        times: list[float] = []
        if opened.checkpoint is None:
            write_env(task.run_dir, resolved_device, amp_dtype=strategy.amp_dtype)
        else:
            strategy.load_state_dict(opened.checkpoint["strategy"])
            times = list(opened.checkpoint["train_time_s"])
        upper_bound = spec.upper_bound or getattr(strategy, "upper_bound", False)

        for session in range(opened.done, sessions):
            seed_everything(session_seed(task.seed, session))
            kill_point(f"session{session + 1}:start")
            peaks = SessionPeakMemory(resolved_device)  # this session's training and evaluation
            peaks.start()
            began = time.perf_counter()
            try:
                strategy.train(benchmark.train_stream[session])
            except FloatingPointError as exc:
                raise RunFailedError(f"method {task.name!r}, seed {task.seed}: {exc}") from exc
            times.append(time.perf_counter() - began)
            kill_point(f"session{session + 1}:trained")
            strategy.eval(benchmark.test_stream)
            peak_rows = peaks.rows()  # measured peaks (runner/peak_memory.py)
            trained = session + 1
            kill_point(f"session{trained}:evaluated")
            # train_steps: optimiser steps of the session; upper_bound: a reference that re-reads past data (Joint)
            rows = [{"metric": "train_time_s", "value": times[-1]},
                    {"metric": "train_steps", "value": float(strategy.train_steps)}]
            rows += [{"metric": "upper_bound", "value": 1.0}] if upper_bound else []
            rows += [{"metric": f"loss/{name}", "value": value} for name, value in loss_terms.session_means.items()]
            rows += [{"metric": name, "value": value} for name, value in grad_probe.session_rows.items()]
            rows += precision_rows(strategy.amp_dtype)
            rows += [{"metric": f"memory_bytes/{kind}", "value": float(size)}
                     for kind, size in sorted(strategy.memory_report().items())]
            rows += peak_rows
            append_extra_rows(csv_path, [
                {"run": opened.run_name, "method": task.name, "seed": task.seed, "train_exp": trained,
                 "eval_dataset": "-", "protocol": task.config.protocol, "trial": "-", **row} for row in rows
            ])
            kill_point(f"session{trained}:rows")
            save_session(task, strategy, trained=trained, sessions=sessions, times=times,
                         datasets=list(benchmark.reid_datasets))
        return csv_path
    finally:
        for logger in loggers:
            logger.close()
