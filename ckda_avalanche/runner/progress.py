"""A tqdm progress bar over the iterations of every training epoch (Avalanche's InteractiveLogger prints metric
tables too, which is noise for a leaderboard run; this shows only where training is)."""
from __future__ import annotations

from typing import Any

from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm


LOSS_EVERY = 20
"""Iterations between two loss readings shown on the bar."""


class EpochProgressPlugin(SupervisedPlugin):
    """One transient bar per epoch: ``<label> | session s/S epoch e/E`` with the running loss."""

    def __init__(self, *, label: str) -> None:
        super().__init__()
        self.label = label
        self._bar: Any = None

    def before_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        total = len(strategy.dataloader) if hasattr(strategy.dataloader, "__len__") else None
        session = int(strategy.clock.train_exp_counter) + 1
        epoch = int(strategy.clock.train_exp_epochs) + 1
        self._bar = tqdm(total=total, leave=False, dynamic_ncols=True,
                         desc=f"{self.label} | session {session} epoch {epoch}/{strategy.train_epochs}")

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n % LOSS_EVERY == 1 or LOSS_EVERY == 1:  # reading the loss synchronises a GPU
                self._bar.set_postfix(loss=f"{float(strategy.loss.detach()):.3f}", refresh=False)

    def after_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
