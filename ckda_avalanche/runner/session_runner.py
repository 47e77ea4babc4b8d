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

The task's method is resolved already (`task.RunTask`): a variant such as ``ckda[no_cka+no_merge]``
(`runner.variants`) runs its base strategy with the variant's config, and its name is the folder name and the CSV's
``method`` value.

Determinism: every session starts by re-seeding Python, NumPy and torch from ``(seed, session)``, and the sampler is
seeded the same way, so a run resumed from the checkpoint of session s trains session s+1 exactly as the
uninterrupted run does. A run killed at any point (even SIGKILL) loses at most the session in progress: the checkpoint
and ``state.json`` are replaced atomically, and rows the CSV received after the last checkpoint are dropped on resume.

Opening and saving the folder (`run_folder`), with the resume guards (`run_state`, `data_record`): a resume
whose settings differ from ``config.json``, or whose data differs from ``data.json``, is refused with a diff of the fields unless ``override=True`` (then recorded); a
checkpoint whose archive checksums fail is refused with one line naming it; a missing or damaged ``metrics.csv`` is
rebuilt from the checkpoint's copy (rows of other protocols, from ``ckda eval``, are kept). Injected faults for
tests: `fault_injection` (``CKDA_KILL_AT``, ``CKDA_FAULT_INJECT``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.run_folder import open_run
from ckda_avalanche.runner.task import RunTask
from ckda_avalanche.runner.training import train_sessions

__all__ = ["run_single"]


def run_single(task: RunTask, benchmark: Any, *, plugins: Sequence[Any] = ()) -> Path:
    """Train and evaluate ``task`` (its resolved method, with its seed) over ``benchmark``; return the tidy CSV path.

    After each session the model is evaluated on every dataset of the stream, the CSV gains that evaluation's rows
    plus ``train_time_s``, ``train_steps`` (and ``upper_bound`` for Joint), ``loss/<term>`` (per-session mean of
    each unweighted loss term), ``grad_share/<point>/<term>``, ``grad_proj/<point>/<term>`` and
    ``grad_norm/<point>/total`` (`plugins.grad_share`), ``precision/<name>`` and ``memory_bytes/<kind>`` rows,
    the measured peaks (``peak_rss_bytes``, and on CUDA ``peak_gpu_*_bytes``: `runner.peak_memory`), and the
    checkpoint is replaced. ``task.keep_sessions`` also keeps the evaluated model of every session
    (`runner.session_models`, for ``ckda eval``). ``task.override``: resume even when the settings differ from the
    run's ``config.json`` (the change is recorded there). ``task.loggers`` names tracking loggers next to the tidy
    CSV (TensorBoard, W&B: `runner.loggers`); ``plugins`` are extra stateless plugins (they must not have ``state_dict``, or
    checkpoints would depend on them). ``task.data_root``: the folder the benchmark's datasets were read from,
    recorded with a fingerprint of the data in ``data.json`` (`runner.data_record`); a resume on other data is
    refused unless ``task.override``.
    """
    opened = open_run(task, benchmark)
    return train_sessions(task, benchmark, opened, plugins=plugins)
