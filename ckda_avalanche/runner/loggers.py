"""The tracking loggers of a run (``ckda run --logger``), attached next to the tidy CSV, which stays the source of
truth: TensorBoard under ``RUN_DIR/tensorboard`` and W&B (offline unless ``WANDB_MODE`` says otherwise) under
``RUN_DIR/wandb``, both with the run's settings as hyperparameters (`evaluation.tracking`)."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

from ckda_avalanche.runner.task import RunTask

__all__ = ["LOGGERS", "make_loggers"]

LOGGERS: tuple[str, ...] = ("tensorboard", "wandb")
"""Accepted values of ``ckda run --logger``."""


def make_loggers(task: RunTask) -> list[Any]:
    """The tracking loggers of ``task`` (TensorBoard under ``RUN_DIR/tensorboard``, W&B under ``RUN_DIR/wandb``)."""
    if not task.loggers:
        return []
    from ckda_avalanche.evaluation.tracking import flatten_hparams

    method_cfg = task.method.config
    hparams = flatten_hparams({
        "method": task.name, "seed": task.seed, "run": task.run_name, **task.config.to_dict(),
        "method_config": {} if method_cfg is None else dataclasses.asdict(method_cfg),
    })
    loggers: list[Any] = []
    for kind in task.loggers:
        if kind == "tensorboard":
            from ckda_avalanche.evaluation.tracking import ReadableTensorboardLogger

            loggers.append(ReadableTensorboardLogger(tb_log_dir=task.run_dir / "tensorboard", hparams=hparams))
        elif kind == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise RuntimeError("--logger wandb: the wandb package is not installed (pip install wandb)") from None
            from ckda_avalanche.evaluation.tracking import ReadableWandBLogger

            run_id = hashlib.sha1(str(task.run_dir.resolve()).encode()).hexdigest()[:16]
            loggers.append(ReadableWandBLogger(
                project=f"ckda-{task.run_name}", run_name=f"{task.name}-seed{task.seed}", run_id=run_id,
                wandb_dir=task.run_dir, config=hparams, mode=os.environ.get("WANDB_MODE", "offline")))
        else:
            raise ValueError(f"--logger: unknown logger {kind!r}; choose from {LOGGERS}")
    return loggers
