"""What the executors of a leaderboard run share with their callers: the executor names, `ExecutorOptions` and
`ExecutorError`. Their own module so the local executor (`executors.py`), the Ray executor (`ray_executor.py`) and the
fault messages (`faults.py`) import it instead of each other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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
