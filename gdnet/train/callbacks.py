"""Callbacks: small objects ``fit`` calls at the start and end of training, of each epoch and
after each step.

A callback sees the run through ``self.run`` (a ``FitRun``: model, optimizer, loaders, epoch,
step, history) and ends training with ``self.run.stop(reason)``. Hooks read only what ``fit``
has already read: the epoch's ``logs`` are Python floats; the loss handed to
``on_batch_end`` is still on the device, and reading it is a synchronisation.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau


class Callback:
    """Base class: every hook does nothing; override the ones you need.

    Attributes:
        run: the ``FitRun`` of the current ``fit`` call (set before ``on_train_begin``).
    """

    run: Any = None

    def set_run(self, run: Any) -> None:
        self.run = run

    def on_train_begin(self) -> None:
        """Before the first epoch: check settings against ``self.run`` and reset state."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Before epoch ``epoch`` (counted from 1)."""

    def on_batch_end(self, step: int, loss: Tensor) -> None:
        """After optimizer step ``step`` (counted from 1 over the run); ``loss`` is the batch's
        loss on the device: read it only every so often."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """After epoch ``epoch``, with its row of the history (Python floats)."""

    def on_train_end(self) -> None:
        """After the last epoch, or after a callback stopped the run."""


def check_monitor(run: Any, monitor: str, who: str) -> None:
    """ValueError naming ``who`` unless the run logs ``monitor``."""
    if monitor not in run.log_keys:
        hint = " (val_* values need a val_loader)" if monitor.startswith("val_") and run.val_loader is None else ""
        raise ValueError(f"{who}: unknown monitor {monitor!r}{hint}; this run logs {run.log_keys}")


class LearningRateScheduler(Callback):
    """Step a ``gdnet.optim.lr_scheduler`` schedule during ``fit``.

    ``fit(..., scheduler=s)`` is ``LearningRateScheduler(s)`` run before the other callbacks, so
    a checkpoint written at the end of an epoch holds the stepped schedule.

    Args:
        scheduler: the schedule (its optimizer should be the one ``fit`` trains with).
        interval: "epoch" steps it after each epoch; "step" after each optimizer step (for
            schedules counted in batches, such as OneCycleLR).
        monitor: the logged value ReduceLROnPlateau watches (default "val_loss" when the run
            has a validation set, else "loss"); only for ReduceLROnPlateau.
    """

    def __init__(self, scheduler: LRScheduler, interval: str = "epoch", monitor: str | None = None):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"LearningRateScheduler needs a gdnet.optim.lr_scheduler schedule; "
                            f"got {type(scheduler).__name__}")
        if interval not in ("epoch", "step"):
            raise ValueError(f"interval must be 'epoch' or 'step'; got {interval!r}")
        plateau = isinstance(scheduler, ReduceLROnPlateau)
        if plateau and interval == "step":
            raise ValueError("ReduceLROnPlateau steps on a metric read once per epoch; use interval='epoch'")
        if monitor is not None and not plateau:
            raise ValueError(f"monitor is for ReduceLROnPlateau; {type(scheduler).__name__} steps without a metric")
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor

    def _watched(self) -> str:
        if self.monitor is not None:
            return self.monitor
        return "val_loss" if "val_loss" in self.run.log_keys else "loss"

    def on_train_begin(self) -> None:
        if isinstance(self.scheduler, ReduceLROnPlateau):
            check_monitor(self.run, self._watched(), "LearningRateScheduler")

    def on_batch_end(self, step: int, loss: Tensor) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(logs[self._watched()])
        else:
            self.scheduler.step()
