"""Callbacks: small objects ``fit`` calls at the start and end of training, of each epoch and
after each step.

A callback sees the run through ``self.run`` (a ``FitRun``: model, optimizer, loaders, epoch,
step, history) and ends training with ``self.run.stop(reason)``. Hooks read only what ``fit``
has already read: the epoch's ``logs`` are Python floats; the loss handed to
``on_batch_end`` is still on the device, and reading it is a synchronisation.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from .. import distributed
from .._creation import as_array_like
from .._io import existing_parent
from ..autograd import Tensor
from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from .checkpoint import CheckpointError, all_finite, load, save
from .history import finite_or_none
from .loop import check_int, sharded


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

    ``fit(..., scheduler=s)`` is ``LearningRateScheduler(s)``. Schedules run before the other
    callbacks, so a checkpoint written at the end of an epoch holds the stepped schedule, and
    the run's schedule (``FitRun.scheduler``) is the one ModelCheckpoint saves.

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


class _Monitor:
    """Whether a logged value improved on the best so far, by at least ``min_delta``."""

    def __init__(self, who: str, monitor: str, mode: str, min_delta: float):
        if not isinstance(monitor, str):
            raise TypeError(f"{who}: monitor must be the name of a logged value, e.g. 'val_loss'; got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max'; got {mode!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < math.inf:
            raise ValueError(f"{who}: min_delta must be a finite number >= 0; got {min_delta!r}")
        self.who, self.monitor, self.min_delta = who, monitor, float(min_delta)
        # "auto": accuracies rise, everything else (losses) should fall
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        """Record ``value``; True where it beats the best (NaN never does)."""
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better and math.isfinite(value):
            self.best = value
            return True
        return False


class EarlyStopping(Callback):
    """Stop when a logged value has stopped improving.

    Args:
        monitor: the value to watch ("val_loss", "val_accuracy", "loss", ...).
        patience: epochs in a row without improvement to allow; the next one stops the run
            (0 stops at the first epoch that does not improve).
        min_delta: the least change that counts as an improvement.
        mode: "min", "max", or "auto" (max for accuracies, min otherwise).
        restore_best_weights: keep a copy of the weights of the best epoch on the device and
            put it back into the model when training ends.
    Attributes:
        best, best_epoch: the best value and its epoch; stopped_epoch: where it stopped (or None).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = False):
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.patience = monitor, check_int("EarlyStopping: patience", patience, 0)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self) -> None:
        check_monitor(self.run, self.monitor, "EarlyStopping")
        self._monitor.reset()
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] | None = None

    @property
    def best(self) -> float:
        return self._monitor.best

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self._monitor.improved(logs[self.monitor]):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                # a copy on the model's device: no transfer, and later steps do not touch it
                self.best_weights = {name: as_array_like(array, array)
                                     for name, array in self.run.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            best = "none yet" if self.best_epoch is None else f"best {self.best:.6g} at epoch {self.best_epoch}"
            self.run.stop(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs ({best})")

    def on_train_end(self) -> None:
        if self.best_weights is not None and self.best_epoch != self.run.epoch:
            self.run.model.load_state_dict(self.best_weights)


class ModelCheckpoint(Callback):
    """Save checkpoints during ``fit``: ``last.safetensors`` after every epoch and
    ``best.safetensors`` whenever the monitored value improves, each with the model, the
    optimizer, the run's schedule and training loader, the epoch, the step and the epoch's
    logged values (``Checkpoint.extra["metrics"]``); see ``gdnet.train.save``.

    An epoch whose loss, monitored value or weights are not finite is not saved (with a
    warning), so a diverging run never writes NaN over a good checkpoint. In a
    gdnet.distributed job only rank 0 writes (the replicas hold the same weights).

    Args:
        directory: where to write (created with its parents if missing).
        monitor, mode, min_delta: what "best" means (as for EarlyStopping).
        save_best, save_last: which files to keep.
        extra: more values to store in every checkpoint (hyperparameters, say).
    Attributes:
        last_path, best_path: the files; best_epoch: the epoch best_path holds (or None);
        skipped: the epochs not saved because something was not finite.
    """

    def __init__(self, directory: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 min_delta: float = 0.0, save_best: bool = True, save_last: bool = True,
                 extra: dict[str, Any] | None = None):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"ModelCheckpoint: {str(self.directory)!r} is a file; expected a directory")
        if not (save_best or save_last):
            raise ValueError("ModelCheckpoint: save_best and save_last are both False: nothing would be saved")
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"ModelCheckpoint: extra must be a dict of values to store, e.g. {{'hidden': 100}}; got "
                            f"{type(extra).__name__}")
        self.extra = dict(extra or {})
        reserved = {"metrics", "epoch", "step"} & set(self.extra)
        if reserved:
            raise ValueError(f"ModelCheckpoint: extra may not use the names {sorted(reserved)}; "
                             "the checkpoint sets them")
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, min_delta)
        self.monitor, self.save_best, self.save_last = monitor, save_best, save_last
        self.last_path = self.directory / "last.safetensors"
        self.best_path = self.directory / "best.safetensors"
        self.best_epoch: int | None = None
        self.skipped: list[int] = []

    def on_train_begin(self) -> None:
        if self.save_best:
            check_monitor(self.run, self.monitor, "ModelCheckpoint")
        if distributed.is_main_process():
            self.directory.mkdir(parents=True, exist_ok=True)
        self._monitor.reset()
        self.best_epoch, self.skipped = None, []
        if self.save_best and self.run.epoch > 0:
            self._resume_best()

    def _resume_best(self) -> None:
        """A resumed run (``initial_epoch`` > 0) keeps the best that ``best_path`` holds from
        its earlier epochs, so a worse epoch after the resume does not replace it (Keras's
        ``initial_value_threshold``, taken from the file)."""
        if not self.best_path.is_file():
            return
        try:
            saved = load(self.best_path)
        except (CheckpointError, OSError) as exc:
            warnings.warn(f"ModelCheckpoint: {str(self.best_path)!r} is not readable ({exc}); the best is counted "
                          "afresh from this run's epochs", RuntimeWarning, stacklevel=3)
            return
        value = (saved.extra.get("metrics") or {}).get(self.monitor)
        # a best from a later epoch belongs to another branch of the run: not this one's past
        if saved.epoch is not None and saved.epoch <= self.run.epoch and isinstance(value, (int, float)):
            if self._monitor.improved(float(value)):
                self.best_epoch = saved.epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        run = self.run
        watched = [logs["loss"]] + ([logs[self.monitor]] if self.save_best else [])
        if not all(math.isfinite(v) for v in watched) or not all_finite(run.model.state_dict().values()):
            self.skipped.append(epoch)
            values = ", ".join(dict.fromkeys(["loss", self.monitor] if self.save_best else ["loss"]))
            warnings.warn(f"ModelCheckpoint: epoch {epoch} not saved: its {values} or weights are not finite; the last "
                          "good checkpoint stays", RuntimeWarning, stacklevel=2)
            return
        improved = self.save_best and self._monitor.improved(logs[self.monitor])
        for wanted, path in ((self.save_last, self.last_path), (improved, self.best_path)):
            if wanted and distributed.is_main_process():
                save(path, run.model, run.optimizer, run.scheduler, run.train_loader, epoch=epoch, step=run.step,
                     metrics=dict(logs), **self.extra)
        if improved:
            self.best_epoch = epoch


class TerminateOnNaN(Callback):
    """Stop training once the loss is NaN or infinite.

    The loss of every ``every``-th step is read from the device (the only reads this adds), and
    the epoch's mean loss at its end. The run stops after that step; the epoch is still logged,
    and ModelCheckpoint refuses to save it. Over a sharded loader (``distributed=True``) the
    step's loss is summed over the ranks first, so every rank stops at the same step.

    Args:
        every: steps between checks (1 checks every step, a synchronisation per step).
    Attributes:
        stopped_step: the step whose loss was not finite (or None).
    """

    def __init__(self, every: int = 50):
        self.every = check_int("TerminateOnNaN: every", every, 1)
        self.stopped_step: int | None = None

    def on_train_begin(self) -> None:
        self.stopped_step = None

    def on_batch_end(self, step: int, loss: Tensor) -> None:
        if step % self.every == 0:
            if sharded(self.run.train_loader):  # a copy: the reduction may write into its input
                loss = Tensor(distributed.reduce_array(loss.xp.reshape(loss.data, (1,)) * 1.0, "sum"))
            value = loss.item()
            if not math.isfinite(value):
                self.stopped_step = step
                self.run.stop(f"TerminateOnNaN: the loss is {value} at step {step}")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if not math.isfinite(logs["loss"]):
            self.run.stop(f"TerminateOnNaN: the mean loss of epoch {epoch} is {logs['loss']}")


class _EpochFileLogger(Callback):
    """Appends one line per epoch to a file, opened and closed each time (so every finished
    epoch is on disk, whatever happens later). Only rank 0 of a gdnet.distributed job writes."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        existing_parent(self.path)
        self.append = bool(append)

    def header(self) -> str | None:
        return None

    def line(self, epoch: int, logs: dict[str, float]) -> str:
        raise NotImplementedError

    def on_train_begin(self) -> None:
        if not distributed.is_main_process():
            return
        header = self.header()
        if self.append and self.path.exists() and self.path.stat().st_size:
            if header is not None:
                with open(self.path, newline="") as file:
                    first = file.readline()
                if first != header:
                    raise ValueError(f"{type(self).__name__}: {str(self.path)!r} has the columns {first.strip()!r}; "
                                     f"this run logs {header.strip()!r} (append=False starts a new file)")
            return
        with open(self.path, "w", newline="") as file:
            file.write(header or "")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if distributed.is_main_process():
            with open(self.path, "a", newline="") as file:
                file.write(self.line(epoch, logs))


class CSVLogger(_EpochFileLogger):
    """Write the history to a CSV file, one row per epoch as it ends.

    Args:
        path: the file (its directory must exist); replaced unless ``append``.
        append: add rows to an existing file with the same columns.
    """

    def _row(self, values: list[Any]) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(values)
        return text.getvalue()

    def header(self) -> str:
        return self._row(["epoch", *self.run.log_keys])

    def line(self, epoch: int, logs: dict[str, float]) -> str:
        return self._row([epoch, *(logs[key] for key in self.run.log_keys)])


class JSONLinesLogger(_EpochFileLogger):
    """Write the history as JSON lines, one object per epoch as it ends (NaN as null).

    Args:
        path: the file (its directory must exist); replaced unless ``append``.
        append: add lines to an existing file.
    """

    def line(self, epoch: int, logs: dict[str, float]) -> str:
        return json.dumps({"epoch": epoch, **{k: finite_or_none(v) for k, v in logs.items()}}) + "\n"
