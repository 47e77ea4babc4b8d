"""Injected faults for tests of resume and of the executors: a crash at a named instant, or a worker killed once.

**Crash points** (``CKDA_KILL_AT=<instant>``): the run signals itself there. Instants are named after the session they
belong to, numbered like the CSV's ``train_exp`` (session 1 is the first):

- ``session<s>:start``: session s about to train (the sessions before it are complete);
- ``session<s>:iteration<i>``: after training iteration ``i`` (1-based, counted over the session) of session s;
- ``session<s>:trained``: training of session s finished, nothing evaluated yet;
- ``session<s>:eval<d>``: after evaluating the d-th test dataset (1-based) following session s;
- ``session<s>:evaluated``: evaluation rows written, run-level rows (time, memory) not yet;
- ``session<s>:rows``: every CSV row of session s written, checkpoint not yet;
- ``session<s>:checkpoint``: right after the checkpoint write, before ``state.json``;
- ``session<s>:state``: after ``state.json``, i.e. session s complete.

The signal is SIGKILL (no cleanup, like a power cut) unless ``CKDA_KILL_SIGNAL`` names ``TERM`` or ``INT``.

**A worker killed once** (``CKDA_FAULT_INJECT=METHOD:SEED:SESSION:ITERATION:MARKER``, set in the environment of
``ckda run``; the driver reads it when it builds the runs, so it also reaches Ray workers that were started earlier):
the run of ``METHOD`` with ``SEED`` calls ``os._exit(FAULT_EXIT_CODE)`` after training iteration ``ITERATION``
(1-based) of session ``SESSION`` (1-based), exactly like a worker killed by the operating system: no exception, no
cleanup. Before exiting it creates the file ``MARKER``; when that file exists the fault does not fire again, so a
retried or resumed run goes through. ``MARKER`` must be on a filesystem the retried process sees (the run folder's
is).

Unset (the normal case) every hook is a no-op and `fault_plugins` returns no plugin, so runs are unchanged.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avalanche.core import SupervisedPlugin

__all__ = ["FAULT_ENV", "FAULT_EXIT_CODE", "KILL_ENV", "SIGNAL_ENV", "FaultInjectionPlugin", "FaultSpec",
           "FaultSpecError", "KillPlugin", "fault_plugins", "kill_point"]

KILL_ENV = "CKDA_KILL_AT"
"""Environment variable naming the instant at which the process kills itself."""


SIGNAL_ENV = "CKDA_KILL_SIGNAL"
"""Environment variable: the signal `kill_point` sends, ``KILL`` (default) or ``TERM`` / ``INT`` (tests of the
clean-stop path)."""


def kill_point(instant: str) -> None:
    """Signal this process when ``CKDA_KILL_AT`` equals ``instant``: SIGKILL (no cleanup, like a power cut) unless
    ``CKDA_KILL_SIGNAL`` names ``TERM`` or ``INT``."""
    if os.environ.get(KILL_ENV) == instant:
        name = os.environ.get(SIGNAL_ENV, "KILL").strip().upper().removeprefix("SIG") or "KILL"
        os.kill(os.getpid(), {"TERM": signal.SIGTERM, "INT": signal.SIGINT}.get(name, signal.SIGKILL))


class KillPlugin(SupervisedPlugin):
    """Calls `kill_point` inside ``train`` / ``eval`` (iterations and evaluated datasets)."""

    def __init__(self) -> None:
        super().__init__()
        self._iteration = 0

    @staticmethod
    def _session(strategy: Any) -> int:
        return int(strategy.clock.train_exp_counter)

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._iteration = 0

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._iteration += 1
        kill_point(f"session{self._session(strategy) + 1}:iteration{self._iteration}")

    def after_eval_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        kill_point(f"session{self._session(strategy)}:eval{int(strategy.experience.current_experience) + 1}")

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


def fault_plugins(method: str, seed: int, fault: str | None) -> list[SupervisedPlugin]:
    """The injected faults of the run (method, seed): `KillPlugin` when ``CKDA_KILL_AT`` is set, and
    `FaultInjectionPlugin` when ``fault`` (the driver's ``CKDA_FAULT_INJECT``) targets this run; else ``[]``."""
    plugins: list[SupervisedPlugin] = [KillPlugin()] if os.environ.get(KILL_ENV) else []
    if fault:
        spec = FaultSpec.parse(fault)
        if spec.targets(method, seed):
            plugins.append(FaultInjectionPlugin(spec=spec))
    return plugins
