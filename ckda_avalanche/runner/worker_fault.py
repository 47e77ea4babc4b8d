"""Fault injection for tests of the executors' failure handling: kill the process once, in the middle of a session.

Set ``CKDA_FAULT_INJECT=METHOD:SEED:SESSION:ITERATION:MARKER`` in the environment of ``ckda run`` (the driver reads it
when it builds the runs, so it also reaches Ray workers that were started earlier). The run of ``METHOD`` with
``SEED`` then calls ``os._exit(FAULT_EXIT_CODE)`` after training iteration ``ITERATION`` (1-based) of session
``SESSION`` (1-based), exactly like a worker killed by the operating system: no exception, no cleanup. Before exiting
it creates the file ``MARKER``; when that file exists the fault does not fire again, so a retried or resumed run
goes through. ``MARKER`` must be on a filesystem the retried process sees (the run folder's is).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avalanche.core import SupervisedPlugin

FAULT_ENV = "CKDA_FAULT_INJECT"
"""Environment variable holding the fault specification."""
FAULT_EXIT_CODE = 77
"""Exit status of a process killed by an injected fault."""


class FaultSpecError(ValueError):
    """``CKDA_FAULT_INJECT`` is malformed."""


@dataclass(frozen=True)
class FaultSpec:
    """Where to kill the process: one (method, seed), one session, one iteration, once (guarded by ``marker``)."""

    method: str
    """Method name of the run to kill."""
    seed: int
    """Seed of the run to kill."""
    session: int
    """1-based session in which to die."""
    iteration: int
    """1-based training iteration of that session after which to die."""
    marker: Path
    """File created just before dying; while it exists the fault is disarmed."""

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``METHOD:SEED:SESSION:ITERATION:MARKER`` (the marker path may itself contain ``:``)."""
        parts = text.split(":", 4)
        if len(parts) != 5 or not parts[0] or not parts[4]:
            raise FaultSpecError(f"{FAULT_ENV}={text!r}: expected METHOD:SEED:SESSION:ITERATION:MARKER_FILE")
        try:
            seed, session, iteration = int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError:
            raise FaultSpecError(f"{FAULT_ENV}={text!r}: SEED, SESSION and ITERATION must be integers") from None
        if session < 1 or iteration < 1:
            raise FaultSpecError(f"{FAULT_ENV}={text!r}: SESSION and ITERATION are 1-based")
        return cls(method=parts[0], seed=seed, session=session, iteration=iteration, marker=Path(parts[4]))

    def targets(self, method: str, seed: int) -> bool:
        """True when this fault is meant for the run (method, seed)."""
        return self.method == method and self.seed == seed


class FaultInjectionPlugin(SupervisedPlugin):
    """Calls ``os._exit`` once at the configured (session, iteration); see the module docstring."""

    def __init__(self, *, spec: FaultSpec) -> None:
        super().__init__()
        self.spec = spec
        self._iteration = 0

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._iteration = 0

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._iteration += 1
        session = int(strategy.clock.train_exp_counter) + 1
        if session != self.spec.session or self._iteration != self.spec.iteration:
            return
        try:
            fd = os.open(self.spec.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # fired before: this is the retry
        os.write(fd, f"killed pid {os.getpid()} at session {session} iteration {self._iteration}\n".encode())
        os.close(fd)
        os._exit(FAULT_EXIT_CODE)


def fault_from_env(environ: dict[str, str] | None = None) -> FaultSpec | None:
    """The fault configured in ``CKDA_FAULT_INJECT`` (None when unset or empty)."""
    text = (os.environ if environ is None else environ).get(FAULT_ENV, "")
    return FaultSpec.parse(text) if text else None
