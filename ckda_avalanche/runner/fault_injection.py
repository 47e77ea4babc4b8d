"""Deterministic crash points for testing resume: ``CKDA_KILL_AT=<instant>`` makes the run SIGKILL itself there.

Instants are named after the session they belong to, numbered like the CSV's ``train_exp`` (session 1 is the
first):

- ``session<s>:start``: session s about to train (the sessions before it are complete);
- ``session<s>:iteration<i>``: after training iteration ``i`` (1-based, counted over the session) of session s;
- ``session<s>:trained``: training of session s finished, nothing evaluated yet;
- ``session<s>:eval<d>``: after evaluating the d-th test dataset (1-based) following session s;
- ``session<s>:evaluated``: evaluation rows written, run-level rows (time, memory) not yet;
- ``session<s>:rows``: every CSV row of session s written, checkpoint not yet;
- ``session<s>:checkpoint``: right after the checkpoint write, before ``state.json``;
- ``session<s>:state``: after ``state.json``, i.e. session s complete.

Unset (the normal case) every hook is a no-op and `fault_plugins` returns no plugin, so runs are unchanged.
"""
from __future__ import annotations

import os
import signal
from typing import Any

from avalanche.core import SupervisedPlugin

__all__ = ["KILL_ENV", "SIGNAL_ENV", "KillPlugin", "fault_plugins", "kill_point"]

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


def fault_plugins() -> list[SupervisedPlugin]:
    """``[KillPlugin()]`` when ``CKDA_KILL_AT`` is set, else ``[]``."""
    return [KillPlugin()] if os.environ.get(KILL_ENV) else []
