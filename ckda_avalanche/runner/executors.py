"""Executors of a leaderboard run's (method, seed) grid: ``local`` (one run after the other in this process) and
``ray`` (each run a Ray task with declared resources, on an embedded local Ray instance or an existing cluster).

Both call `run_task.execute_run` for every run, show one progress bar over runs and print one line per finished run;
the driver (``ckda run``) then writes the leaderboard and plots from the tidy CSVs, whichever executor ran them.
"""
from __future__ import annotations

from collections.abc import Callable

from ckda_avalanche.runner.executor_options import EXECUTORS, ExecutorError, ExecutorOptions  # noqa: F401
from ckda_avalanche.runner.run_task import RunOutcome, RunTask, benchmark_key, execute_run, refuse_existing


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
