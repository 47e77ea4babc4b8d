"""Experiment tracking through Avalanche's own loggers: TensorBoard and Weights & Biases, with readable names.

`ReadableTensorboardLogger` and `ReadableWandBLogger` subclass Avalanche's ``TensorboardLogger`` and
``WandBLogger``. They log every `ReIDMetricValue` whose trial is the trial mean (or a stream value) as a scalar
named ``<metric>/<dataset>`` at step = sessions trained, e.g.

- ``mAP/regdb``, ``Rank1/sysu``, ``Rank5/llcm``, ``mINP/vcm``, ``mAP/seen_avg``;
- ``forgetting/mAP/regdb``, ``forgetting/mAP/seen_avg``, ``bwt/mAP/seen_avg`` (and the same for Rank1).

Per-trial scores (``full`` protocol) and values of periodic evaluations are left to the tidy CSV, which stays the
source of truth for the leaderboard and plots. The run's configuration is logged as hyperparameters (TensorBoard's
HParams tab, W&B's run config), flattened to dotted names such as ``train.lr`` or ``method.beta``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avalanche.logging import TensorboardLogger, WandBLogger

from .metric_value import ReIDMetricValue

__all__ = ["ReadableTensorboardLogger", "ReadableWandBLogger", "readable_name", "flatten_hparams",
           "HPARAM_METRICS"]

HPARAM_METRICS: tuple[str, ...] = (
    "mAP/seen_avg", "Rank1/seen_avg", "mINP/seen_avg", "forgetting/mAP/seen_avg", "bwt/mAP/seen_avg",
)
"""Scalar tags shown as the metrics of TensorBoard's HParams table."""


def readable_name(value: ReIDMetricValue) -> str | None:
    """``<metric>/<dataset>`` for trial means and stream values; None for single trials (left to the CSV)."""
    if value.trial not in ("mean", "-"):
        return None
    return f"{value.metric}/{value.eval_dataset}"


def flatten_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Nested mapping -> ``{"a.b": scalar}``; lists, tuples and None become JSON text (what hparams accept)."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_hparams(value, prefix=f"{name}."))
        elif isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def _readable_values(metric_values: list[Any]) -> list[tuple[str, float, int]]:
    out = []
    for value in metric_values:
        if isinstance(value, ReIDMetricValue):
            name = readable_name(value)
            if name is not None:
                out.append((name, float(value.value), int(value.train_exp)))
    return out


class ReadableTensorboardLogger(TensorboardLogger):
    """Avalanche's ``TensorboardLogger`` writing ReID scores as ``<metric>/<dataset>`` per session.

    :param tb_log_dir: folder of the event files (one run of TensorBoard's run list).
    :param hparams: flat hyperparameters (`flatten_hparams`) written once to the HParams plugin, with
        `HPARAM_METRICS` as its metrics.
    """

    def __init__(self, *, tb_log_dir: str | Path, hparams: Mapping[str, bool | int | float | str] | None = None):
        super().__init__(tb_log_dir=tb_log_dir)
        if hparams:
            from torch.utils.tensorboard.summary import hparams as hparams_summary

            file_writer = self.writer._get_file_writer()
            for summary in hparams_summary(dict(hparams), {tag: math.nan for tag in HPARAM_METRICS}):
                file_writer.add_summary(summary)
            self.writer.add_text("config", "```\n" + json.dumps(dict(hparams), indent=1) + "\n```", 0)
            self.writer.flush()

    def log_metrics(self, metric_values: list[Any]) -> None:
        for name, value, step in _readable_values(metric_values):
            self.log_single_metric(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


class ReadableWandBLogger(WandBLogger):
    """Avalanche's ``WandBLogger`` logging ReID scores as ``<metric>/<dataset>`` with step = sessions trained.

    Offline by default (``mode="offline"``, sync later with ``wandb sync DIR``). The run's config goes to
    ``wandb.config``. Console capture is off (the driver's output stays ours).
    """

    def __init__(self, *, project: str, run_name: str, run_id: str, wandb_dir: str | Path,
                 config: Mapping[str, Any], mode: str = "offline") -> None:
        import wandb

        Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(console="off", quiet=True, disable_git=True, x_disable_stats=True)
        super().__init__(project_name=project, run_name=run_name, dir=str(wandb_dir), config=dict(config),
                         save_code=False, params={"id": run_id, "mode": mode, "resume": "allow",
                                                  "settings": settings})

    def log_metrics(self, metric_values: list[Any]) -> None:
        for name, value, step in _readable_values(metric_values):
            self.log_single_metric(name, value, step)

    def log_single_metric(self, name: str, value: Any, x_plot: int) -> None:
        # Avalanche 0.6's version checks ``wandb.viz.CustomChart``, which recent wandb releases no longer have;
        # this logger only ever logs floats.
        self.step = x_plot
        self.wandb.log({name: float(value)}, step=x_plot)

    def close(self) -> None:
        """Finish the W&B run (writes the offline files)."""
        self.wandb.finish()
