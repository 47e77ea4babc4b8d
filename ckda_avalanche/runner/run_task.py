"""One (method, seed) of a leaderboard run as a self-contained task: what the local and the Ray executor both call.

`execute_run` builds the benchmark (unless given one), sets the threads, attaches the tracking loggers, records the
attempt in ``attempts.jsonl`` and calls `session_runner.run_single`, so a run computes the same thing whichever
executor runs it. Everything in a `RunTask` is plain data (paths, dataclasses), so it can be pickled to a Ray worker.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.config import RunConfig

ATTEMPTS = "attempts.jsonl"
"""One JSON line per start of a run (host, pid, executor, sessions already done): shows retries and resumes."""
LOGGERS: tuple[str, ...] = ("tensorboard", "wandb")
"""Accepted values of ``ckda run --logger``."""


@dataclass(frozen=True)
class RunTask:
    """Everything one (method, seed) needs, as plain picklable data."""

    method: str
    """Method name (a key of ``ckda_avalanche.strategies.STRATEGIES``)."""
    seed: int
    """Seed of the run."""
    run_name: str
    """Name recorded in the CSV's ``run`` column (the output folder's name)."""
    run_dir: Path
    """``OUT/<method>/seed<seed>``."""
    config: RunConfig
    """Resolved run configuration."""
    data_root: Path
    """Folder holding the datasets (must be visible where the task runs)."""
    resume: bool = False
    """Continue from the last finished session (always True for Ray tasks: a retry resumes)."""
    device: str = "auto"
    """Torch device name, or ``auto``."""
    threads: int | None = None
    """Torch intra-op threads for this run; None leaves torch's default."""
    loggers: tuple[str, ...] = ()
    """Tracking loggers to attach (`LOGGERS`) next to the tidy CSV."""
    progress: bool = False
    """Per-epoch progress bars and per-dataset score lines."""
    keep_sessions: bool = False
    """Also keep the evaluated model of every session (``--keep-session-checkpoints``)."""
    override: bool = False
    """Resume even when the settings differ from the run's ``config.json`` (``--resume-override``)."""
    executor: str = "local"
    """Name of the executor, recorded in ``attempts.jsonl``."""
    fault: str | None = None
    """``CKDA_FAULT_INJECT`` value of the driver (tests only; see `runner.worker_fault`)."""
    compile_model: bool = False
    """Train through ``torch.compile`` (``--compile``; speed only)."""
    runs_per_node: int = 1
    """Runs the executor places on one node at the same time; the decoded-image cache budget is divided by it
    (`benchmarks.cache_budget`)."""

    @property
    def label(self) -> str:
        """``<method> seed <k>``: how messages name this run."""
        return f"{self.method} seed {self.seed}"


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run reports back to the driver (the metrics themselves are in its tidy CSV)."""

    method: str
    """Method name."""
    seed: int
    """Seed."""
    run_dir: Path
    """Run folder."""
    sessions: int
    """Sessions trained."""
    seen_map: float
    """Seen-average mAP after the last session (fraction)."""
    seen_rank1: float
    """Seen-average Rank-1 after the last session (fraction)."""
    train_time_s: float
    """Training seconds summed over sessions."""
    host: str
    """Host name of the machine that finished the run."""
    attempts: int
    """Starts recorded in ``attempts.jsonl`` (more than one: resumed or retried)."""

    def line(self) -> str:
        """One line for the driver's output."""
        retried = f", {self.attempts} attempts" if self.attempts > 1 else ""
        return (f"finished {self.method} seed {self.seed} on {self.host}: {self.sessions} sessions, "
                f"train {self.train_time_s:.1f} s{retried}; seen mAP {100 * self.seen_map:.1f}, "
                f"R1 {100 * self.seen_rank1:.1f}")


def run_exists(run_dir: Path) -> bool:
    """True when ``run_dir`` holds results (what makes `run_single` refuse to start without ``resume``)."""
    from ckda_avalanche.runner.session_runner import CHECKPOINT, METRICS

    return (run_dir / CHECKPOINT).exists() or (run_dir / METRICS).exists()


def refuse_existing(tasks: list[RunTask]) -> None:
    """Raise `RunExistsError` for the first task whose folder holds results while it does not resume."""
    from ckda_avalanche.runner.session_runner import RunExistsError

    for task in tasks:
        if not task.resume and run_exists(task.run_dir):
            raise RunExistsError(
                f"{task.run_dir} already holds a run; pass --resume to continue it, or choose another --out")


def build_benchmark(config: RunConfig, method: str, data_root: Path, *, runs_per_node: int = 1) -> Any:
    """The VI-LReID benchmark for ``method`` (its stream-level switches applied) under ``config``; the image cache
    gets the node's budget divided by ``runs_per_node`` (`benchmarks.cache_budget`)."""
    from ckda_avalanche.benchmarks.cache_budget import per_run_cache_limit
    from ckda_avalanche.benchmarks.streams import vi_lreid_benchmark
    from ckda_avalanche.models import get_model_config
    from ckda_avalanche.runner.session_runner import method_config, stream_overrides

    extra = dict(stream_overrides(method_config(method, config)))
    reader_options = config.readers.for_stream(config.datasets, extra.pop("reader_options", None))
    img_size = tuple(get_model_config(config.model).img_size)
    if runs_per_node > 1 and "cache_limit_bytes" not in extra:
        extra["cache_limit_bytes"] = per_run_cache_limit(runs_per_node)
    benchmark = vi_lreid_benchmark(data_root, datasets=config.datasets, protocol=config.protocol,
                                   img_size=img_size, reader_options=reader_options, **extra)
    if not config.train.allow_unpaired_identities:
        check_paired_identities(benchmark)
    return benchmark


def check_paired_identities(benchmark: Any) -> None:
    """`DatasetProblemsError` (naming the dataset's own identity label and a file) when a training identity of any
    session has images of one modality only: refused before the first session trains, not at its own session."""
    from ckda_avalanche.benchmarks.datasets.problems import DatasetProblemsError, one_modality_identities

    for experience in benchmark.train_stream:
        info = experience.reid
        problems = one_modality_identities(info.dataset, info.samples)
        if problems:
            raise DatasetProblemsError(problems)


def benchmark_key(config: RunConfig, method: str) -> str:
    """Runs with equal keys can share one benchmark object (same stream-level switches)."""
    from ckda_avalanche.runner.session_runner import method_config, stream_overrides

    return repr(sorted(stream_overrides(method_config(method, config)).items()))


def _sessions_done(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "state.json").read_text(encoding="utf-8"))["sessions_done"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _count_attempts(run_dir: Path) -> int:
    try:
        return sum(1 for line in (run_dir / ATTEMPTS).read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        return 0


def _record_attempt(task: RunTask, threads: int) -> int:
    task.run_dir.mkdir(parents=True, exist_ok=True)
    path = task.run_dir / ATTEMPTS
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "pid": os.getpid(),
             "executor": task.executor, "threads": threads, "sessions_done": _sessions_done(task.run_dir)}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _count_attempts(task.run_dir)


def make_loggers(task: RunTask) -> list[Any]:
    """The tracking loggers of ``task`` (TensorBoard under ``RUN_DIR/tensorboard``, W&B under ``RUN_DIR/wandb``)."""
    if not task.loggers:
        return []
    from ckda_avalanche.evaluation.tracking import flatten_hparams
    from ckda_avalanche.runner.session_runner import method_config

    method_cfg = method_config(task.method, task.config)

    hparams = flatten_hparams({
        "method": task.method, "seed": task.seed, "run": task.run_name, **task.config.to_dict(),
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
                project=f"ckda-{task.run_name}", run_name=f"{task.method}-seed{task.seed}", run_id=run_id,
                wandb_dir=task.run_dir, config=hparams, mode=os.environ.get("WANDB_MODE", "offline")))
        else:
            raise ValueError(f"--logger: unknown logger {kind!r}; choose from {LOGGERS}")
    return loggers


def _summary(task: RunTask, csv_path: Path, attempts: int) -> RunOutcome:
    from ckda_avalanche.evaluation import tidy_rows_from_csv

    frame = tidy_rows_from_csv(csv_path)
    last = int(frame.train_exp.max()) if len(frame) else 0
    seen = frame[(frame.train_exp == last) & (frame.eval_dataset == "seen_avg") & (frame.trial == "-")
                 & (frame.protocol == task.config.protocol)]  # not rows `ckda eval` added under other protocols

    def pick(metric: str) -> float:
        values = seen.loc[seen.metric == metric, "value"]
        return float(values.iloc[-1]) if len(values) else float("nan")

    return RunOutcome(method=task.method, seed=task.seed, run_dir=task.run_dir, sessions=last,
                      seen_map=pick("mAP"), seen_rank1=pick("Rank1"),
                      train_time_s=float(frame.loc[frame.metric == "train_time_s", "value"].sum()),
                      host=socket.gethostname(), attempts=attempts)


def execute_run(task: RunTask, benchmark: Any | None = None) -> RunOutcome:
    """Train and evaluate one (method, seed); the same code path for every executor (see the module docstring)."""
    import torch

    from ckda_avalanche.runner.worker_fault import FaultInjectionPlugin, FaultSpec
    from ckda_avalanche.runner.session_runner import RunSpec, run_single

    if benchmark is None:
        benchmark = build_benchmark(task.config, task.method, task.data_root, runs_per_node=task.runs_per_node)
    threads_before = torch.get_num_threads()
    if task.threads is not None:
        torch.set_num_threads(int(task.threads))
    try:
        finished = task.resume and _sessions_done(task.run_dir) >= len(benchmark.train_stream)
        # a start that has something to do is an attempt; a finished run resumed again is not
        attempts = _count_attempts(task.run_dir) if finished else _record_attempt(task, torch.get_num_threads())
        plugins = []
        if task.fault:
            fault = FaultSpec.parse(task.fault)
            if fault.targets(task.method, task.seed):
                plugins.append(FaultInjectionPlugin(spec=fault))
        loggers = [] if finished else make_loggers(task)
        spec = RunSpec(method=task.method, seed=task.seed, run_name=task.run_name, run_dir=task.run_dir,
                       config=task.config)
        try:
            csv_path = run_single(spec, benchmark, resume=task.resume, device=task.device, progress=task.progress,
                                  keep_sessions=task.keep_sessions, override=task.override, loggers=loggers,
                                  plugins=plugins, data_root=task.data_root, compile_model=task.compile_model)
        finally:
            for logger in loggers:
                logger.close()
        return _summary(task, csv_path, attempts)
    finally:
        torch.set_num_threads(threads_before)
