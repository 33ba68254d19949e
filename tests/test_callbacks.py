"""Callbacks in fit: the hooks and their order, stopping, learning-rate schedules, and bad input."""

from __future__ import annotations

import pytest
from test_fit import setup

import gdnet as gd
from gdnet.nn import functional as F
from gdnet.optim import lr_scheduler


class Recorder(gd.train.Callback):
    """Writes down every hook call; stops the run after ``stop_after`` epochs."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.stop_after = stop_after

    def on_train_begin(self):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, step, loss):
        self.calls.append(("batch_end", step))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch_end", epoch, sorted(logs)))
        if epoch == self.stop_after:
            self.run.stop(f"asked to stop after epoch {epoch}")

    def on_train_end(self):
        self.calls.append(("train_end",))


def test_hooks_run_in_order_and_see_the_run(backend):
    model, optimizer, train, val = setup(n=64)  # two steps per epoch
    recorder = Recorder()
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, val_loader=val, callbacks=[recorder],
                           verbose=0)
    keys = sorted(history.keys()[1:])
    assert recorder.calls == [
        ("train_begin",),
        ("epoch_begin", 1), ("batch_end", 1), ("batch_end", 2), ("epoch_end", 1, keys),
        ("epoch_begin", 2), ("batch_end", 3), ("batch_end", 4), ("epoch_end", 2, keys),
        ("train_end",),
    ]
    run = recorder.run
    assert run.model is model and run.optimizer is optimizer and run.val_loader is val
    assert run.history is history and run.epoch == 2 and run.step == 4 and not run.stop_training


def test_a_callback_stops_the_run_after_its_epoch():
    model, optimizer, train, _ = setup(validation=False)
    recorder = Recorder(stop_after=2)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=5, callbacks=[recorder], verbose=0)
    assert history["epoch"] == [1, 2]
    assert history.stop_reason == "asked to stop after epoch 2" == recorder.run.stop_reason
    assert recorder.calls[-1] == ("train_end",)


# -- LearningRateScheduler ----------------------------------------------------------------------
def test_a_schedule_counted_in_steps():
    model, optimizer, train, _ = setup(validation=False)  # 8 steps per epoch
    schedule = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=16)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, verbose=0,
                           callbacks=[gd.train.LearningRateScheduler(schedule, interval="step")])
    assert schedule.last_epoch == 16
    _, reference_optimizer, _, _ = setup()
    reference = lr_scheduler.OneCycleLR(reference_optimizer, max_lr=0.1, total_steps=16)
    rates = [reference.get_last_lr()[0]]
    for _ in range(8):
        reference.step()
    rates.append(reference.get_last_lr()[0])
    assert history["lr"] == rates


def test_plateau_schedule_watches_what_it_is_told(monkeypatch):
    model, optimizer, train, val = setup()
    schedule = lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=0, factor=0.5)
    seen = []
    original = schedule.step
    monkeypatch.setattr(schedule, "step", lambda value: (seen.append(value), original(value)))
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=3, val_loader=val, verbose=0,
                           callbacks=[gd.train.LearningRateScheduler(schedule, monitor="accuracy")])
    assert seen == history["accuracy"]


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda opt: gd.train.LearningRateScheduler(opt), TypeError, "needs a gdnet.optim.lr_scheduler schedule"),
        (lambda opt: gd.train.LearningRateScheduler(lr_scheduler.StepLR(opt, 2), interval="batch"), ValueError,
         "interval must be 'epoch' or 'step'"),
        (lambda opt: gd.train.LearningRateScheduler(lr_scheduler.ReduceLROnPlateau(opt), interval="step"),
         ValueError, "use interval='epoch'"),
        (lambda opt: gd.train.LearningRateScheduler(lr_scheduler.StepLR(opt, 2), monitor="loss"), ValueError,
         "monitor is for ReduceLROnPlateau"),
    ],
)
def test_bad_schedule_arguments(make, error, message):
    _, optimizer, _, _ = setup()
    with pytest.raises(error, match=message):
        make(optimizer)


@pytest.mark.parametrize("monitor, message", [
    ("val_loss", r"unknown monitor 'val_loss' \(val_\* values need a val_loader\)"),
    ("los", "unknown monitor 'los'; this run logs"),
])
def test_an_unknown_monitor_fails_before_training(monitor, message):
    model, optimizer, train, _ = setup(validation=False)
    schedule = lr_scheduler.ReduceLROnPlateau(optimizer)
    recorder = Recorder()
    with pytest.raises(ValueError, match=message):
        gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, verbose=0,
                     callbacks=[gd.train.LearningRateScheduler(schedule, monitor=monitor), recorder])
    assert ("epoch_begin", 1) not in recorder.calls
