"""``fit``: the plain training loop with metrics, validation, callbacks and a progress bar.

Sugar over the loop in the README, not a framework: each epoch is ``train_pass`` (the loop
``train_epoch`` runs) and, with a validation set, ``evaluation_pass``. The loss and metrics
accumulate on the device and are read once per pass, so a step never waits for the device.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Sequence

from .. import distributed
from .._backend import get_backend
from ..autograd import Tensor
from ..optim.lr_scheduler import LRScheduler
from .callbacks import Callback, LearningRateScheduler
from .history import History
from .loop import (
    Loss,
    Metric,
    check_int,
    check_pass_arguments,
    default_metrics,
    evaluation_pass,
    progress_bar,
    resolve_metrics,
    show_metrics,
    train_pass,
)

# steps between the progress bar's readings of the running loss (each is a device read)
REPORT_EVERY = 50


class FitRun:
    """One ``fit`` call as its callbacks see it.

    Attributes:
        model, loss, optimizer, train_loader, val_loader: what ``fit`` was given.
        scheduler: the schedule fit steps (``scheduler=``, else the first LearningRateScheduler
            callback's), or None.
        epochs: the last epoch to train; epoch: the current one (counted from 1).
        step: optimizer steps so far (counting ``initial_epoch`` full epochs before this call).
        history: the rows so far.
        log_keys: the names every row of this run has, in order.
        stop_training: set by ``stop()``; the run ends after the current step's epoch.
        stop_reason: the first reason given to ``stop()``.
    """

    def __init__(self, model, loss: Loss, optimizer, scheduler, train_loader, val_loader, epochs: int,
                 metrics: dict[str, Metric], initial_epoch: int):
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.train_loader, self.val_loader = train_loader, val_loader
        self.epochs = epochs
        self.epoch = initial_epoch
        self.step = initial_epoch * len(train_loader) if hasattr(train_loader, "__len__") else 0
        self.history = History()
        rates = ["lr"] + [f"lr_{i}" for i in range(1, len(optimizer.param_groups))]
        values = ["loss", *metrics]
        self.log_keys = values + ([f"val_{name}" for name in values] if val_loader is not None else []) + rates + [
            "seconds", "examples_per_second"]
        self.stop_training = False
        self.stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        """End training after the current step (the epoch is still logged)."""
        self.stop_training = True
        if self.stop_reason is None:
            self.stop_reason = self.history.stop_reason = reason


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _check_callbacks(callbacks: Any) -> list[Callback]:
    """``callbacks`` as a list, refused unless None or an iterable of Callback objects."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or not hasattr(callbacks, "__iter__"):
        name = type(callbacks).__name__
        hint = f": pass a list, callbacks=[{name}(...)]" if isinstance(callbacks, Callback) else ""
        raise TypeError(f"fit: callbacks must be a list of gdnet.train.Callback objects; got {name}{hint}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            hint = (" (a schedule goes in scheduler=, or in callbacks as LearningRateScheduler(schedule))"
                    if isinstance(callback, LRScheduler) else "")
            raise TypeError(f"callbacks must be gdnet.train.Callback objects; got {type(callback).__name__}{hint}")
    return callbacks


def _epoch_line(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    # losses and metrics to four places, so the columns of successive lines line up (0.8000
    # beside 0.7575); the learning rate in significant figures (1e-05, 0.05)
    figures = "  ".join(f"{k} {v:.4g}" if k == "lr" else f"{k} {v:.4f}"
                        for k, v in logs.items() if k not in ("seconds", "examples_per_second"))
    return f"epoch {epoch:>3}/{epochs}  {figures}  {logs['seconds']:.2f} s  {logs['examples_per_second']:.0f} ex/s"


def fit(model, loss: Loss, optimizer, train_loader, epochs: int, val_loader=None,
        metrics: Sequence[str | Metric] | None = None, callbacks: Iterable[Callback] | None = (), scheduler=None,
        verbose: int = 1, initial_epoch: int = 0) -> History:
    """Train ``model`` for ``epochs`` epochs and return the History.

    Each epoch: one pass of gradient descent over ``train_loader`` (``optimizer.zero_grad()``,
    ``loss(model(x), y).backward()``, ``optimizer.step()`` per batch), then a pass over
    ``val_loader`` without gradients, then the scheduler steps and the callbacks see the row.

    Args:
        model: a Module mapping a batch x to scores.
        loss: ``loss(scores, y)`` -> the batch's mean loss (e.g. ``gd.nn.functional.cross_entropy``).
        optimizer: a gdnet Optimizer over the model's parameters.
        train_loader: yields (x, y) batches on the model's device (e.g. a DataLoader).
        epochs: the last epoch to train (so ``epochs - initial_epoch`` epochs run).
        val_loader: optional (x, y) batches for the ``val_*`` values.
        metrics: names from ``gdnet.train.METRICS`` ("accuracy") or functions
            ``metric(scores, y)`` returning the batch's mean; logged under their names. None
            (the default): "accuracy" where it applies (the training set has class labels, or
            the loss is cross_entropy or nll_loss), nothing else (a regression logs its loss).
        callbacks: a list of Callback objects (EarlyStopping, ModelCheckpoint, TerminateOnNaN,
            ...), or None.
        scheduler: a learning-rate schedule stepped once per epoch; ReduceLROnPlateau gets
            the validation loss (the training loss without ``val_loader``). A schedule counted
            in steps goes in ``callbacks`` as ``LearningRateScheduler(s, interval="step")``.
        verbose: 0 silent; 1 a tqdm bar per epoch with loss and metrics when standard error is
            a terminal, else (notebooks, pipes, CI logs) one printed line per epoch; 2 both. In
            a gdnet.distributed job only rank 0 shows and prints; over sharded loaders
            (``distributed=True``) the logged values are every rank's (all-reduced once per pass).
        initial_epoch: epochs already trained (when resuming from a checkpoint).
    Returns:
        the History: one row per epoch (see History).
    Raises:
        TypeError: an argument is not of its kind, before any step: ``model`` not a Module,
            a loader not iterable (or a Module), ``loss`` not a function, ``optimizer`` not an
            optimizer, ``callbacks`` not a list of Callbacks (a single one, say),
            ``scheduler`` not a schedule, a metric neither a name nor a function.
        ValueError: ``epochs`` not an int >= 1, ``initial_epoch`` not an int in [0, epochs],
            ``verbose`` not 0, 1 or 2, an unknown or repeated metric.
    """
    check_int("epochs", epochs, 1)
    check_int("initial_epoch", initial_epoch, 0)
    if initial_epoch > epochs:
        raise ValueError(f"initial_epoch ({initial_epoch}) is past the last epoch ({epochs})")
    if not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2; got {verbose!r}")
    loaders = {"train_loader": train_loader, **({"val_loader": val_loader} if val_loader is not None else {})}
    check_pass_arguments("fit", "(model, loss, optimizer, train_loader, epochs)", model, loaders, ("loss", loss),
                         optimizer)
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"fit: optimizer must be a gdnet.optim optimizer (fit logs the rates of its "
                        f"param_groups); got {type(optimizer).__name__}")
    callbacks = _check_callbacks(callbacks)
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        hint = (" (a LearningRateScheduler callback goes in callbacks=[...])"
                if isinstance(scheduler, LearningRateScheduler) else "")
        raise TypeError(f"fit: scheduler must be a gdnet.optim.lr_scheduler schedule; got "
                        f"{type(scheduler).__name__}{hint}")
    metric_fns = resolve_metrics(default_metrics(train_loader, loss) if metrics is None else metrics)
    # schedules step before the other callbacks see the epoch (so checkpoints hold the stepped one)
    schedules = [LearningRateScheduler(scheduler)] if scheduler is not None else []
    schedules += [c for c in callbacks if isinstance(c, LearningRateScheduler)]
    hooks = schedules + [c for c in callbacks if not isinstance(c, LearningRateScheduler)]
    run = FitRun(model, loss, optimizer, schedules[0].scheduler if schedules else None, train_loader, val_loader,
                 epochs, metric_fns, initial_epoch)
    backend = get_backend()
    main = distributed.is_main_process()
    show_bar = main and verbose >= 1 and _is_terminal(sys.stderr)

    def after_step(batch_loss: Tensor) -> bool:
        run.step += 1
        for hook in hooks:
            hook.on_batch_end(run.step, batch_loss)
        return run.stop_training

    for hook in hooks:
        hook.set_run(run)
    for hook in hooks:
        hook.on_train_begin()
    for epoch in range(initial_epoch + 1, epochs + 1):
        run.epoch = epoch
        for hook in hooks:
            hook.on_epoch_begin(epoch)
        rates = [float(group["lr"]) for group in optimizer.param_groups]
        total = len(train_loader) if hasattr(train_loader, "__len__") else None
        bar = progress_bar(total, f"epoch {epoch}/{epochs}", leave=True) if show_bar else None
        try:
            start = time.perf_counter()
            logs, examples = train_pass(model, train_loader, optimizer, loss, metric_fns, bar, REPORT_EVERY,
                                        after_step)
            backend.synchronize()
            seconds = time.perf_counter() - start
            if val_loader is not None:
                logs.update({f"val_{k}": v for k, v in evaluation_pass(model, val_loader, loss, metric_fns).items()})
            if bar is not None:
                show_metrics(bar, logs, done=True)
        finally:
            if bar is not None:
                bar.close()
        logs["lr"] = rates[0]
        logs.update({f"lr_{i}": rate for i, rate in enumerate(rates[1:], start=1)})
        logs["seconds"] = seconds
        logs["examples_per_second"] = examples / seconds if seconds > 0 else float("inf")
        run.history.append(epoch, logs)
        for hook in hooks:
            hook.on_epoch_end(epoch, logs)
        if main and (verbose == 2 or (verbose == 1 and not show_bar)):
            print(_epoch_line(epoch, epochs, logs), flush=True)
        if run.stop_training:
            break
    for hook in hooks:
        hook.on_train_end()
    return run.history

