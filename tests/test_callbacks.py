"""Callbacks in fit: the hooks and their order, stopping, learning-rate schedules, early stopping,
checkpoints, stopping on NaN, the CSV and JSON-lines logs, and bad input."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from test_fit import counted_host_reads, setup, weights

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


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda opt: dict(callbacks=gd.train.TerminateOnNaN()), r"fit: callbacks must be a list of "
         r"gdnet.train.Callback objects; got TerminateOnNaN: pass a list, callbacks=\[TerminateOnNaN\(...\)\]"),
        (lambda opt: dict(callbacks=3), r"fit: callbacks must be a list of gdnet.train.Callback objects; got int$"),
        (lambda opt: dict(callbacks=[lr_scheduler.StepLR(opt, 2)]), r"callbacks must be gdnet.train.Callback "
         r"objects; got StepLR \(a schedule goes in scheduler=, or in callbacks as "
         r"LearningRateScheduler\(schedule\)\)"),
        (lambda opt: dict(scheduler=gd.train.LearningRateScheduler(lr_scheduler.StepLR(opt, 2))), r"fit: scheduler "
         r"must be a gdnet.optim.lr_scheduler schedule; got LearningRateScheduler \(a LearningRateScheduler callback "
         r"goes in callbacks=\[...\]\)"),
        (lambda opt: dict(scheduler=0.5), "fit: scheduler must be a gdnet.optim.lr_scheduler schedule; got float$"),
    ],
)
def test_callbacks_and_schedules_in_the_wrong_place_are_refused_before_training(make, message):
    model, optimizer, train, _ = setup(validation=False)
    before = weights(model)
    with pytest.raises(TypeError, match=message):
        gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, verbose=0, **make(optimizer))
    assert all(np.array_equal(v, weights(model)[k]) for k, v in before.items())
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_callbacks_none_is_no_callbacks():
    model, optimizer, train, _ = setup(validation=False)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, verbose=0, callbacks=None)
    plain, plain_optimizer, plain_train, _ = setup(validation=False)
    assert history["loss"] == gd.train.fit(plain, F.cross_entropy, plain_optimizer, plain_train, epochs=1,
                                           verbose=0)["loss"]


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


# -- a metric whose value each epoch is scripted -----------------------------------------------
class Scripted(gd.train.Callback):
    """Makes the ``score`` metric report ``values[epoch - 1]`` in each epoch, and keeps the
    weights after each epoch (host copies, for comparisons)."""

    def __init__(self, values):
        self.values, self.current, self.snapshots = values, None, {}

    def on_epoch_begin(self, epoch):
        self.current = self.values[epoch - 1]

    def on_epoch_end(self, epoch, logs):
        self.snapshots[epoch] = weights(self.run.model)

    def score(self, scores, labels):
        xp = scores.xp
        return gd.Tensor(xp.asarray(self.current, dtype=scores.dtype, device=scores.device))


def fit_scripted(values, *callbacks, epochs=None, validation=False):
    """fit for len(values) epochs (or ``epochs``) with the scripted ``score`` metric; returns
    (history, script, model)."""
    model, optimizer, train, val = setup(validation=validation)
    script = Scripted(values)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=epochs or len(values), val_loader=val,
                           metrics=("accuracy", script.score), callbacks=[script, *callbacks], verbose=0)
    return history, script, model


# -- EarlyStopping -------------------------------------------------------------------------------
def test_early_stopping_waits_patience_epochs_then_restores_the_best_weights(backend):
    stopper = gd.train.EarlyStopping(monitor="score", patience=1, restore_best_weights=True)
    history, script, model = fit_scripted([3.0, 2.0, 2.5, 2.25, 1.0], stopper)
    assert history["score"] == [3.0, 2.0, 2.5, 2.25]
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (2.0, 2, 4)
    assert history.stop_reason == "EarlyStopping: score has not improved for 2 epochs (best 2 at epoch 2)"
    assert all(array.device == backend.device for array in stopper.best_weights.values())
    for name, value in weights(model).items():
        assert np.array_equal(value, script.snapshots[2][name]), name
        assert not np.array_equal(value, script.snapshots[4][name]), name


def test_early_stopping_keeps_the_last_weights_when_they_are_the_best():
    stopper = gd.train.EarlyStopping(monitor="score", patience=0, restore_best_weights=True)
    history, script, model = fit_scripted([3.0, 2.0, 1.0], stopper)
    assert history.stop_reason is None and stopper.stopped_epoch is None and stopper.best_epoch == 3
    assert all(np.array_equal(v, script.snapshots[3][k]) for k, v in weights(model).items())


def test_early_stopping_min_delta_mode_and_nan():
    stopper = gd.train.EarlyStopping(monitor="score", min_delta=0.1)
    history, _, _ = fit_scripted([1.0, 0.95, 0.5], stopper)
    assert history["epoch"] == [1, 2]  # 0.95 is not 0.1 better than 1.0
    stopper = gd.train.EarlyStopping(monitor="score", mode="max", patience=1)
    history, _, _ = fit_scripted([1.0, 2.0, math.nan, 1.5, 3.0], stopper)
    assert history["epoch"] == [1, 2, 3, 4] and stopper.best == 2.0  # NaN is never an improvement
    assert gd.train.EarlyStopping(monitor="val_accuracy")._monitor.mode == "max"
    assert gd.train.EarlyStopping(monitor="val_loss")._monitor.mode == "min"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(patience=-1), ValueError, "patience must be an int >= 0"),
        (dict(patience=1.5), ValueError, "patience must be an int >= 0"),
        (dict(mode="up"), ValueError, "mode must be 'auto', 'min' or 'max'"),
        (dict(min_delta=-0.1), ValueError, "min_delta must be a finite number >= 0"),
        (dict(min_delta=math.nan), ValueError, "min_delta must be a finite number >= 0"),
        (dict(monitor=3), TypeError, "monitor must be the name of a logged value"),
    ],
)
def test_bad_early_stopping_arguments(kwargs, error, message):
    with pytest.raises(error, match=f"EarlyStopping: {message}"):
        gd.train.EarlyStopping(**kwargs)


def test_an_unknown_monitor_is_named_before_training():
    model, optimizer, train, val = setup()
    for callback in (gd.train.EarlyStopping(monitor="val_acc"), gd.train.ModelCheckpoint("unused", monitor="val_acc")):
        with pytest.raises(ValueError, match=f"{type(callback).__name__}: unknown monitor 'val_acc'; this run logs "
                                             r"\['loss', 'accuracy', 'val_loss', 'val_accuracy'"):
            gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, val_loader=val, callbacks=[callback],
                         verbose=0)


# -- ModelCheckpoint -----------------------------------------------------------------------------
class Watch(gd.train.Callback):
    """After each epoch, the epochs that last.safetensors and best.safetensors hold."""

    def __init__(self, directory):
        self.directory, self.last, self.best = directory, [], []

    def on_epoch_end(self, epoch, logs):
        self.last.append(gd.train.load(self.directory / "last.safetensors").epoch)
        best = self.directory / "best.safetensors"
        self.best.append(gd.train.load(best).epoch if best.exists() else None)


def test_model_checkpoint_writes_last_every_epoch_and_best_on_improvement(tmp_path):
    directory = tmp_path / "runs" / "a"
    saver = gd.train.ModelCheckpoint(directory, monitor="score", extra={"hidden": 16})
    watch = Watch(directory)
    history, script, model = fit_scripted([3.0, 2.0, 2.5, 1.0], saver, watch)
    assert (watch.last, watch.best) == ([1, 2, 3, 4], [1, 2, 2, 4])
    assert sorted(p.name for p in directory.iterdir()) == ["best.safetensors", "last.safetensors"]
    checkpoint = gd.train.load(saver.last_path)
    assert checkpoint.step == 32 and checkpoint.extra["hidden"] == 16
    assert checkpoint.extra["metrics"] == {k: v for k, v in history.rows[-1].items() if k != "epoch"}
    assert checkpoint.optimizer_state is not None and checkpoint.loader_state["epoch"] == 4
    assert_all_equal(checkpoint.model_state, script.snapshots[4])


def test_a_resumed_run_keeps_the_best_of_its_earlier_epochs(tmp_path):
    saver = gd.train.ModelCheckpoint(tmp_path, monitor="score")
    values = [3.0, 2.0, 2.5, 1.5]
    fit_scripted(values[:2], saver)  # epochs 1-2: best is epoch 2 (score 2.0); then the run stops
    model, optimizer, train, _ = setup(validation=False)
    checkpoint = gd.train.load_into(saver.last_path, model, optimizer, loader=train)
    script, resumed, watch = Scripted(values), gd.train.ModelCheckpoint(tmp_path, monitor="score"), Watch(tmp_path)
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=4, initial_epoch=checkpoint.epoch, verbose=0,
                 metrics=("accuracy", script.score), callbacks=[script, resumed, watch])
    # epoch 3 (2.5) is worse than epoch 2's 2.0 from before the resume: best.safetensors stays
    assert watch.best == [2, 4] and resumed.best_epoch == 4
    assert gd.train.load(resumed.best_path).extra["metrics"]["score"] == 1.5


def test_a_resumed_run_counts_the_best_afresh_where_the_file_is_unreadable(tmp_path):
    saver = gd.train.ModelCheckpoint(tmp_path, monitor="score")
    fit_scripted([3.0, 2.0], saver)
    saver.best_path.write_bytes(b"not a checkpoint")
    model, optimizer, train, _ = setup(validation=False)
    checkpoint = gd.train.load_into(saver.last_path, model, optimizer, loader=train)
    script, resumed = Scripted([3.0, 2.0, 2.5]), gd.train.ModelCheckpoint(tmp_path, monitor="score")
    with pytest.warns(RuntimeWarning, match="best.safetensors' is not readable .*counted afresh"):
        gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=3, initial_epoch=checkpoint.epoch, verbose=0,
                     metrics=("accuracy", script.score), callbacks=[script, resumed])
    assert resumed.best_epoch == 3 and gd.train.load(resumed.best_path).epoch == 3


def assert_all_equal(state, expected):
    assert list(state) == list(expected)
    for name, value in state.items():
        assert np.array_equal(value, expected[name]), name


def test_model_checkpoint_saves_the_schedule_of_a_schedule_callback(tmp_path):
    model, optimizer, train, _ = setup(validation=False)
    schedule = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=16)
    saver = gd.train.ModelCheckpoint(tmp_path, save_best=False)
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, verbose=0,
                 callbacks=[saver, gd.train.LearningRateScheduler(schedule, interval="step")])
    state = gd.train.load(saver.last_path).scheduler_state
    assert state["type"] == "OneCycleLR" and state["last_epoch"] == 16
    assert not saver.best_path.exists()


def test_bad_model_checkpoint_arguments(tmp_path):
    with pytest.raises(TypeError, match=r"extra must be a dict of values to store, e.g. \{'hidden': 100\}; got list"):
        gd.train.ModelCheckpoint(tmp_path, extra=[("hidden", 100)])
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file; expected a directory"):
        gd.train.ModelCheckpoint(tmp_path / "file")
    with pytest.raises(ValueError, match="nothing would be saved"):
        gd.train.ModelCheckpoint(tmp_path, save_best=False, save_last=False)
    with pytest.raises(ValueError, match=r"extra may not use the names \['epoch'\]"):
        gd.train.ModelCheckpoint(tmp_path, extra={"epoch": 3})
    with pytest.raises(ValueError, match="ModelCheckpoint: mode must be"):
        gd.train.ModelCheckpoint(tmp_path, mode="best")


# -- TerminateOnNaN ------------------------------------------------------------------------------
def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    """The rate jumps to 1e7 in epoch 3: the loss turns NaN, the run stops within ``every``
    steps, epoch 3 is logged (NaN as null in JSON) but not saved, last.safetensors still holds
    epoch 2, finite, and EarlyStopping puts epoch 2's weights back into the model."""
    model, optimizer, train, _ = setup(validation=False)
    schedule = lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 if epoch < 2 else 1e7)
    saver = gd.train.ModelCheckpoint(tmp_path / "checkpoints", monitor="loss")
    stopper = gd.train.TerminateOnNaN(every=2)
    best = gd.train.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    watch = Watch(tmp_path / "checkpoints")
    csv_log, json_log = gd.train.CSVLogger(tmp_path / "log.csv"), gd.train.JSONLinesLogger(tmp_path / "log.jsonl")
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(
            RuntimeWarning, match="ModelCheckpoint: epoch 3 not saved: its loss or weights are not finite"):
        history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=6, scheduler=schedule, verbose=0,
                               callbacks=[saver, stopper, best, watch, csv_log, json_log])
    assert history["epoch"] == [1, 2, 3] and math.isnan(history["loss"][2])
    assert stopper.stopped_step % 2 == 0 and 16 < stopper.stopped_step <= 24
    assert history.stop_reason == f"TerminateOnNaN: the loss is nan at step {stopper.stopped_step}"
    assert stopper.run.step == stopper.stopped_step  # the epoch ended at that step
    assert saver.skipped == [3] and watch.last == [1, 2, 2] and watch.best == [1, 2, 2]
    checkpoint = gd.train.load(saver.last_path)
    assert checkpoint.epoch == 2 and all(np.isfinite(v).all() for v in checkpoint.model_state.values())
    assert best.best_epoch == 2  # and the model is back at epoch 2's weights, those of the checkpoint
    assert_all_equal(weights(model), checkpoint.model_state)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3] and rows[2]["loss"] is None
    assert rows[1] == history.rows[1]
    with open(tmp_path / "log.csv", newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["epoch", "loss", "accuracy", "lr", "seconds", "examples_per_second"]
    assert [float(x) for x in table[2]] == [history.rows[1][k] for k in table[0]] and table[3][1] == "nan"


def test_terminate_on_nan_reads_the_loss_every_n_steps_only(backend, monkeypatch):
    counts = []
    for callbacks in ([], [gd.train.TerminateOnNaN(every=4)]):
        model, optimizer, train, _ = setup(validation=False, batch_size=16)  # 16 steps per epoch
        with counted_host_reads(backend, monkeypatch) as reads:
            gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, callbacks=callbacks, verbose=0)
        counts.append(len(reads))
    assert counts[1] - counts[0] == 2 * 16 // 4


def test_bad_terminate_on_nan_arguments():
    for every in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="TerminateOnNaN: every must be an int >= 1"):
            gd.train.TerminateOnNaN(every=every)


# -- the logs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("logger", [gd.train.CSVLogger, gd.train.JSONLinesLogger])
def test_logs_start_over_or_append(logger, tmp_path):
    path = tmp_path / "log"
    fit_scripted([1.0, 2.0], logger(path))
    fit_scripted([3.0], logger(path))
    assert len(path.read_text().splitlines()) == (2 if logger is gd.train.CSVLogger else 1)
    fit_scripted([4.0, 5.0], logger(path, append=True))
    lines = path.read_text().splitlines()
    if logger is gd.train.CSVLogger:
        assert [line.split(",")[0] for line in lines] == ["epoch", "1", "1", "2"]
        with pytest.raises(ValueError, match="CSVLogger: .* has the columns 'epoch,loss,accuracy,score,.*'; this run "
                                             "logs 'epoch,loss,accuracy,score,val_loss"):
            fit_scripted([1.0], logger(path, append=True), validation=True)
    else:
        assert [json.loads(line)["score"] for line in lines] == [3.0, 4.0, 5.0]


@pytest.mark.parametrize("logger", [gd.train.CSVLogger, gd.train.JSONLinesLogger])
def test_a_log_in_a_missing_directory_is_refused_at_once(logger, tmp_path):
    with pytest.raises(FileNotFoundError, match="the directory .*nowhere.* does not exist"):
        logger(tmp_path / "nowhere" / "log")
