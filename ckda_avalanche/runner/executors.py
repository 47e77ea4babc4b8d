"""Executors of a leaderboard run's (method, seed) grid: ``local`` (one run after the other in this process) and
``ray`` (each run a Ray task with declared resources, on an embedded local Ray instance or an existing cluster).

Both call `execute.execute_run` for every run, show one progress bar over runs and print one line per finished run;
the driver (``ckda run``, `runner.driver`) validated the tasks before (`validate.validate_run`: a folder that holds
a run is refused there unless ``--resume``) and writes the leaderboard and plots from the tidy CSVs afterwards,
whichever executor ran them.
"""
from __future__ import annotations

from collections.abc import Callable

from ckda_avalanche.runner.executor_options import EXECUTORS, ExecutorError, ExecutorOptions  # noqa: F401
from ckda_avalanche.runner.execute import execute_run
from ckda_avalanche.runner.task import RunOutcome, RunTask


def run_local(tasks: list[RunTask], *, progress: bool = True,
              report: Callable[[str], None] = print) -> list[RunOutcome]:
    """Run ``tasks`` one after the other in this process (benchmarks shared between runs that can share them)."""
    from tqdm.auto import tqdm

    benchmarks: dict[str, object] = {}
    outcomes: list[RunOutcome] = []
    bar = tqdm(total=len(tasks), desc="runs", disable=not progress, dynamic_ncols=True)
    try:
        for task in tasks:
            outcome = execute_run(task, benchmarks)
            outcomes.append(outcome)
            (bar.write if progress else report)(outcome.line())
            bar.update(1)
    finally:
        bar.close()
    return outcomes


def run_grid(tasks: list[RunTask], options: ExecutorOptions,
             report: Callable[[str], None] = print) -> list[RunOutcome]:
    """Run every task with the executor of ``options``; the outcomes come back in the order of ``tasks``."""
    if options.executor == "local":
        return run_local(tasks, progress=options.progress, report=report)
    from ckda_avalanche.runner.ray_executor import run_on_ray

    return run_on_ray(tasks, options, report=report)
