"""One (method, seed) of a run as one task: the method resolved once, the run folder and the run's options.

The driver (`runner.driver`) resolves every ``--methods`` name once (`validate.validate_run`, through
`variants.resolve_methods`) and builds one `RunTask` per (method, seed); the executors, `execute.execute_run`,
`session_runner.run_single`, the benchmark, the tracking loggers and ``config.json`` all read the resolved method
from the task and never parse a method name again. Everything in a task is plain data (paths, dataclasses; an
outside method's config is pickled by reference to its installed module), so it travels to a Ray worker as it is.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckda_avalanche.runner.config import RunConfig
from ckda_avalanche.runner.variants import ResolvedMethod, base_method, resolve_method

__all__ = ["RunOutcome", "RunTask"]


@dataclass(frozen=True)
class RunTask:
    """Everything one (method, seed) needs, as plain picklable data."""

    method: ResolvedMethod
    """The method, resolved: canonical name, base strategy and its config with every override applied."""
    seed: int
    """Seed of model initialisation, sampling and augmentation."""
    run_dir: Path
    """``OUT/<method>/seed<seed>``."""
    config: RunConfig
    """Resolved run configuration."""
    run_name: str = ""
    """Name recorded in the CSV's ``run`` column (the output folder's name); empty: ``run_dir``'s grandparent's."""
    data_root: Path | None = None
    """Folder the datasets are read from (must be visible where the task runs); recorded in ``data.json``."""
    resume: bool = False
    """Continue from the last finished session (always True for Ray tasks: a retry resumes)."""
    device: str = "auto"
    """Torch device name, or ``auto``."""
    threads: int | None = None
    """Torch intra-op threads for this run; None leaves torch's default."""
    loggers: tuple[str, ...] = ()
    """Tracking loggers to attach (`loggers.LOGGERS`) next to the tidy CSV."""
    progress: bool = False
    """Per-epoch progress bars and per-dataset score lines."""
    keep_sessions: bool = False
    """Also keep the evaluated model of every session (``--keep-session-checkpoints``)."""
    override: bool = False
    """Resume even when the settings differ from the run's ``config.json`` (``--resume-override``)."""
    executor: str = "local"
    """Name of the executor, recorded in ``attempts.jsonl``."""
    fault: str | None = None
    """``CKDA_FAULT_INJECT`` value of the driver (tests only; see `runner.fault_injection`)."""
    compile_model: bool = False
    """Train through ``torch.compile`` (``--compile``; speed only)."""
    runs_per_node: int = 1
    """Runs the executor places on one node at the same time; the decoded-image cache budget is divided by it
    (`benchmarks.cache_budget`)."""

    def __post_init__(self) -> None:
        if not self.run_name:
            object.__setattr__(self, "run_name", Path(self.run_dir).parent.parent.name)

    @classmethod
    def create(cls, method: str, seed: int, run_dir: str | Path, config: RunConfig, **options: Any) -> RunTask:
        """A task for the method name ``method`` (a variant too), resolved here under ``config.method_overrides``:
        for callers that start from a name (the Python API, tests); the driver passes resolved methods."""
        resolved = resolve_method(method, config.method_overrides.get(base_method(method)))
        return cls(method=resolved, seed=seed, run_dir=Path(run_dir), config=config, **options)

    @property
    def name(self) -> str:
        """The method's canonical name: its folder name and the CSV's ``method`` value."""
        return self.method.name

    @property
    def label(self) -> str:
        """``<method> seed <k>``: how messages name this run."""
        return f"{self.name} seed {self.seed}"


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

    @classmethod
    def of(cls, task: RunTask, csv_path: Path) -> RunOutcome:
        """The outcome of ``task``, read from its tidy CSV at ``csv_path`` and its ``attempts.jsonl``."""
        from ckda_avalanche.evaluation import tidy_rows_from_csv
        from ckda_avalanche.runner.run_state import count_attempts

        frame = tidy_rows_from_csv(csv_path)
        last = int(frame.train_exp.max()) if len(frame) else 0
        seen = frame[(frame.train_exp == last) & (frame.eval_dataset == "seen_avg") & (frame.trial == "-")
                     & (frame.protocol == task.config.protocol)]  # not rows `ckda eval` added under other protocols

        def pick(metric: str) -> float:
            values = seen.loc[seen.metric == metric, "value"]
            return float(values.iloc[-1]) if len(values) else float("nan")

        return cls(method=task.name, seed=task.seed, run_dir=task.run_dir, sessions=last, seen_map=pick("mAP"),
                   seen_rank1=pick("Rank1"),
                   train_time_s=float(frame.loc[frame.metric == "train_time_s", "value"].sum()),
                   host=socket.gethostname(), attempts=count_attempts(task.run_dir))

    def line(self) -> str:
        """One line for the driver's output."""
        retried = f", {self.attempts} attempts" if self.attempts > 1 else ""
        return (f"finished {self.method} seed {self.seed} on {self.host}: {self.sessions} sessions, "
                f"train {self.train_time_s:.1f} s{retried}; seen mAP {100 * self.seen_map:.1f}, "
                f"R1 {100 * self.seen_rank1:.1f}")
