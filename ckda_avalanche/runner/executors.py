"""Executors of a leaderboard run's (method, seed) grid: ``local`` (one run after the other in this process) and
``ray`` (each run a Ray task with declared resources, on an embedded local Ray instance or an existing cluster).

Both call `run_task.execute_run` for every run, show one progress bar over runs and print one line per finished run;
the driver (``ckda run``) then writes the leaderboard and plots from the tidy CSVs, whichever executor ran them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ckda_avalanche.runner.run_task import RunOutcome, RunTask, benchmark_key, execute_run, refuse_existing

EXECUTORS: tuple[str, ...] = ("local", "ray")
"""Accepted values of ``ckda run --executor``."""


class ExecutorError(RuntimeError):
    """An executor could not run the grid (bad resources, unreachable cluster, unshared paths, failed runs)."""


@dataclass(frozen=True)
class ExecutorOptions:
    """How to run the grid (``ckda run --executor ...``)."""

    executor: str = "local"
    """``local`` or ``ray``."""
    ray_address: str | None = None
    """None: start an embedded Ray instance on this machine; ``auto`` or ``HOST:PORT``: join that cluster."""
    cpus_per_run: float | None = None
    """CPUs reserved per run (Ray ``num_cpus``; torch threads = max(1, floor)); None: 1 for Ray, torch's default
    threads for the local executor."""
    gpus_per_run: float = 0.0
    """GPUs reserved per run (Ray ``num_gpus``; a fraction < 1 packs several runs on one GPU). Ray only."""
    max_retries: int = 3
    """Ray retries of a run whose worker died (deterministic errors are never retried)."""
    progress: bool = True
    """Show the progress bar over runs (and per-epoch bars for the local executor)."""

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ExecutorError(f"--executor: expected one of {EXECUTORS}, got {self.executor!r}")
        if self.cpus_per_run is not None and not (math.isfinite(self.cpus_per_run) and self.cpus_per_run > 0):
            raise ExecutorError(f"--cpus-per-run: expected a number > 0, got {self.cpus_per_run}")
        if not (math.isfinite(self.gpus_per_run) and self.gpus_per_run >= 0):
            raise ExecutorError(f"--gpus-per-run: expected a number >= 0, got {self.gpus_per_run}")
        if self.gpus_per_run > 1 and self.gpus_per_run != int(self.gpus_per_run):
            raise ExecutorError(f"--gpus-per-run: a fraction must be below 1 (runs share a GPU) and more than one "
                                f"GPU must be a whole number, got {self.gpus_per_run}")
        if self.max_retries < 0:
            raise ExecutorError(f"--max-retries: expected >= 0, got {self.max_retries}")
        if self.executor == "local":
            if self.ray_address is not None:
                raise ExecutorError("--ray-address needs --executor ray")
            if self.gpus_per_run:
                raise ExecutorError("--gpus-per-run needs --executor ray (the local executor uses --device)")

    def threads(self) -> int | None:
        """Torch threads per run: follows ``cpus_per_run`` (at least 1); None keeps torch's default (local only)."""
        if self.cpus_per_run is None:
            return 1 if self.executor == "ray" else None
        return max(1, int(self.cpus_per_run))


def run_local(tasks: list[RunTask], *, progress: bool = True,
              report: Callable[[str], None] = print) -> list[RunOutcome]:
    """Run ``tasks`` one after the other in this process (benchmarks shared between runs that can share them)."""
    from tqdm.auto import tqdm

    refuse_existing(tasks)
    benchmarks: dict[tuple[str, str], object] = {}
    outcomes: list[RunOutcome] = []
    bar = tqdm(total=len(tasks), desc="runs", disable=not progress, dynamic_ncols=True)
    try:
        for task in tasks:
            key = (str(task.data_root), repr(task.config.to_dict()) + benchmark_key(task.config, task.method))
            if key not in benchmarks:
                from ckda_avalanche.runner.run_task import build_benchmark

                benchmarks[key] = build_benchmark(task.config, task.method, task.data_root)
            outcome = execute_run(task, benchmarks[key])
            outcomes.append(outcome)
            (bar.write if progress else report)(outcome.line())
            bar.update(1)
    finally:
        bar.close()
    return outcomes


def run_grid(tasks: list[RunTask], options: ExecutorOptions,
             report: Callable[[str], None] = print) -> list[RunOutcome]:
    """Run every task with the executor of ``options``; the outcomes come back in the order of ``tasks``."""
    if options.executor == "ray":
        from ckda_avalanche.runner.ray_executor import run_on_ray

        return run_on_ray(tasks, options, report=report)
    return run_local(tasks, progress=options.progress, report=report)
