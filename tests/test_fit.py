"""fit and History on small synthetic data: the rows it logs, the one device read per pass,
the progress bar, validation and schedules, and bad input. Helpers here serve the callback
and checkpoint tests too."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import math
import re

import numpy as np
import pytest
from gdnet.backends import host

import gdnet as gd
from gdnet.nn import functional as F
from gdnet.optim import lr_scheduler
from gdnet.train import fitting as fit_module

FEATURES, CLASSES = 8, 4


def blobs(n=256, seed=0):
    """Four classes told apart by the signs of the first two features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    return x, y


def loaders(n=256, batch_size=32, validation=True):
    """(train loader, validation loader or None) on the active backend, shuffled with seed 1."""
    x, y = blobs(n)
    train = gd.data.DataLoader((x, y), batch_size=batch_size, shuffle=True, seed=1)
    val = gd.data.DataLoader(blobs(64, seed=9), batch_size=64) if validation else None
    return train, val


def mlp(dropout=0.0):
    layers = [gd.nn.Linear(FEATURES, 16), gd.nn.ReLU()]
    if dropout:
        layers.append(gd.nn.Dropout(dropout))
    return gd.nn.Sequential(*layers, gd.nn.Linear(16, CLASSES))


def weights(model) -> dict[str, np.ndarray]:
    """Host copies of the model's parameters and buffers."""
    return {name: host.to_numpy(array) for name, array in model.state_dict().items()}


def setup(lr=0.1, dropout=0.0, validation=True, n=256, batch_size=32):
    """(model, SGD with momentum, train loader, validation loader) from seed 0."""
    gd.manual_seed(0)
    model = mlp(dropout)
    optimizer = gd.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    train, val = loaders(n, batch_size, validation)
    return model, optimizer, train, val


@contextlib.contextmanager
def counted_host_reads(backend, monkeypatch):
    """Counts every read of a device1 array's values back to Python or NumPy (the list's
    length), with label range checks skipped as on CuPy (where they would synchronise)."""
    if backend.name != "array_api_strict" or "device1" not in str(backend.device):
        pytest.skip("the strict device1 row counts device reads")
    reads = []
    array = type(backend.xp.asarray(0, device=backend.device))
    with monkeypatch.context() as patch:
        patch.setattr(type(backend), "value_range", classmethod(lambda cls, array: None))
        for method in ("__bool__", "__float__", "__int__", "__index__", "__array__", "__dlpack__", "to_device"):
            original = getattr(array, method, None)
            if original is None:
                continue

            def counting(self, *args, _original=original, _method=method, **kwargs):
                reads.append(_method)
                return _original(self, *args, **kwargs)

            patch.setattr(array, method, counting)
        yield reads


# -- what fit logs -----------------------------------------------------------------------------
def test_fit_trains_and_logs_one_row_per_epoch(backend):
    model, optimizer, train, val = setup()
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=3, val_loader=val, verbose=0)
    assert len(history) == 3 and history["epoch"] == [1, 2, 3]
    assert history.keys() == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds",
                              "examples_per_second"]
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] > 0.6 and history["val_accuracy"][-1] > 0.6
    assert all(isinstance(v, float) for row in history for k, v in row.items() if k != "epoch")
    assert history["lr"] == [0.1, 0.1, 0.1]
    for seconds, rate in zip(history["seconds"], history["examples_per_second"]):
        assert seconds > 0 and rate * seconds == pytest.approx(256)
    assert all(p.device == backend.device for p in model.parameters())
    assert history.stop_reason is None


def test_fit_is_the_loop_of_train_epoch_and_evaluate():
    """Two epochs of fit give bit-identical weights, losses and accuracies to two train_epoch calls."""
    model, optimizer, train, val = setup()
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, val_loader=val, verbose=0)
    plain, plain_optimizer, plain_train, plain_val = setup()
    for epoch in range(2):
        loss, accuracy = gd.train.train_epoch(plain, plain_train, plain_optimizer)
        val_loss, val_accuracy = gd.train.evaluate(plain, plain_val)
        assert (loss, accuracy) == (history["loss"][epoch], history["accuracy"][epoch])
        assert (val_loss, val_accuracy) == (history["val_loss"][epoch], history["val_accuracy"][epoch])
    for name, value in weights(model).items():
        assert np.array_equal(value, weights(plain)[name]), name


def test_without_validation_and_with_other_metrics():
    def top2(scores, labels):
        xp = scores.xp
        ranked = xp.argsort(scores.data, axis=1, descending=True)[:, :2]
        return gd.Tensor(xp.mean(xp.astype(xp.any(ranked == labels.data[:, None], axis=1), scores.dtype)))

    model, optimizer, train, _ = setup(validation=False)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, metrics=("accuracy", top2),
                           verbose=0)
    assert history.keys() == ["epoch", "loss", "accuracy", "top2", "lr", "seconds", "examples_per_second"]
    assert all(top >= accuracy for top, accuracy in zip(history["top2"], history["accuracy"]))
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, metrics=(), verbose=0)
    assert history.keys() == ["epoch", "loss", "lr", "seconds", "examples_per_second"]


def test_one_rate_per_parameter_group():
    model, _, train, _ = setup(validation=False)
    first, last = list(model.children())[0], list(model.children())[-1]
    optimizer = gd.optim.SGD([{"params": list(first.parameters())}, {"params": list(last.parameters()), "lr": 0.01}],
                             lr=0.1)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, verbose=0)
    assert (history["lr"], history["lr_1"]) == ([0.1], [0.01])


def test_the_training_step_reads_nothing_back(backend, monkeypatch):
    """On device1 the number of device reads per epoch does not grow with the number of steps:
    the loss and metrics are read once per pass."""
    counts = []
    for batch_size in (64, 16):  # 4 and 16 steps per epoch
        model, optimizer, train, val = setup(batch_size=batch_size)
        with counted_host_reads(backend, monkeypatch) as reads:
            gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, val_loader=val, verbose=0)
        counts.append(len(reads))
    assert counts[0] == counts[1]
    assert counts[0] <= 2 * 2 * 3  # two epochs, two passes, a few reads to fetch one stacked array


def test_initial_epoch_continues_the_numbering():
    model, optimizer, train, _ = setup(validation=False)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=5, initial_epoch=3, verbose=0)
    assert history["epoch"] == [4, 5]
    assert len(gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=5, initial_epoch=5, verbose=0)) == 0


# -- schedules ----------------------------------------------------------------------------------
def test_scheduler_steps_once_per_epoch():
    model, optimizer, train, _ = setup(validation=False)
    schedule = lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=3, scheduler=schedule, verbose=0)
    assert history["lr"] == [0.1, 0.05, 0.025]
    assert schedule.last_epoch == 3 and optimizer.param_groups[0]["lr"] == 0.0125


@pytest.mark.parametrize("validation", [True, False], ids=["val_loss", "loss"])
def test_plateau_schedule_gets_the_validation_loss_or_else_the_training_loss(validation, monkeypatch):
    model, optimizer, train, val = setup(validation=validation)
    schedule = lr_scheduler.ReduceLROnPlateau(optimizer, patience=0)
    seen = []
    original = schedule.step
    monkeypatch.setattr(schedule, "step", lambda value: (seen.append(value), original(value)))
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=3, val_loader=val, scheduler=schedule,
                           verbose=0)
    assert seen == history["val_loss" if validation else "loss"]


# -- progress -----------------------------------------------------------------------------------
def test_a_line_per_epoch_when_not_a_terminal_and_silent_with_verbose_0(capsys, monkeypatch):
    """Notebooks, pipes and CI logs get the line a bar would have ended with."""
    model, optimizer, train, val = setup()
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, val_loader=val)
    out, err = capsys.readouterr()
    assert [line.split()[:2] for line in out.splitlines()] == [["epoch", "1/2"], ["epoch", "2/2"]] and err == ""
    assert "val_accuracy" in out
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, val_loader=val, verbose=0)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr(fit_module, "_is_terminal", lambda stream: True)
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=1, val_loader=val, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_a_bar_per_epoch_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(fit_module, "_is_terminal", lambda stream: True)
    model, optimizer, train, val = setup()
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, val_loader=val)
    out, err = capsys.readouterr()
    assert out == ""
    assert "epoch 1/2" in err and "epoch 2/2" in err and "/8 [" in err
    assert "loss " in err and "acc " in err and "val_acc " in err


def test_the_bar_stays_readable_at_80_columns(monkeypatch):
    """Each state of the bar fits 80 columns with every value whole, and, while the epoch
    runs, a bar of at least 10 cells."""
    screen = io.StringIO()
    make_bar = fit_module.progress_bar

    def every_state_drawn(*args, **kwargs):
        bar = make_bar(*args, file=screen, ncols=80, **kwargs)
        bar.mininterval, bar.miniters, bar.dynamic_miniters = 0, 1, False
        return bar

    monkeypatch.setattr(fit_module, "_is_terminal", lambda stream: True)
    monkeypatch.setattr(fit_module, "progress_bar", every_state_drawn)
    monkeypatch.setattr(fit_module, "REPORT_EVERY", 2)
    model, optimizer, train, val = setup()
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=10, val_loader=val)
    states = [state.rstrip() for state in re.split(r"[\r\n]", screen.getvalue()) if state.strip()]
    assert states and all(len(state) <= 80 for state in states), max(states, key=len)
    running = [state for state in states if "|" in state]
    assert running and all(len(state.split("|")[1]) >= 10 for state in running)
    assert any("loss " in state and "acc " in state for state in running)
    last = history.rows[-1]
    final = (f"loss {last['loss']:.4f} acc {last['accuracy']:.4f} val_loss {last['val_loss']:.4f} val_acc "
             f"{last['val_accuracy']:.4f}")
    assert re.fullmatch(r"epoch 10/10 \[\d\d:\d\d\], " + final, states[-1]), states[-1]


def test_verbose_2_prints_a_line_per_epoch(capsys):
    model, optimizer, train, val = setup()
    gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=2, val_loader=val, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "val_accuracy" in lines[0] and "ex/s" in lines[0]


# -- History -----------------------------------------------------------------------------------
def test_history_round_trips_through_json(tmp_path):
    history = gd.train.History([{"epoch": 1, "loss": 0.5, "accuracy": 0.75}, {"epoch": 2, "loss": math.nan,
                                                                              "accuracy": 0.8}])
    assert history.to_dict() == {"epoch": [1, 2], "loss": [0.5, history["loss"][1]], "accuracy": [0.75, 0.8]}
    text = history.to_json(tmp_path / "history.json")
    assert json.loads(text)["loss"] == [0.5, None]  # standard JSON: NaN written as null
    assert (tmp_path / "history.json").read_text() == text
    again = gd.train.History.from_json(text)
    assert again["epoch"] == [1, 2] and math.isnan(again["loss"][1]) and again["accuracy"] == [0.75, 0.8]
    with pytest.raises(KeyError, match="has no 'val_loss'"):
        history["val_loss"]
    with pytest.raises(ValueError, match="one value per epoch"):
        gd.train.History.from_dict({"epoch": [1, 2], "loss": [0.5]})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        history.to_json(tmp_path / "missing" / "history.json")


# -- plots --------------------------------------------------------------------------------------
def test_history_plot_draws_loss_and_accuracy_curves(tmp_path):
    image = pytest.importorskip("matplotlib.image")
    model, optimizer, train, val = setup()
    history = gd.train.fit(model, F.cross_entropy, optimizer, train, epochs=3, val_loader=val, verbose=0)
    path = history.plot(tmp_path / "curves.png", title="four blobs")
    assert path == tmp_path / "curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = image.imread(path).shape
    assert width > height >= 300
    figure = history.figure()
    panels = {axes.get_title(): axes for axes in figure.axes}
    assert list(panels) == ["loss", "accuracy"]
    for name, axes in panels.items():
        lines = {line.get_label(): line for line in axes.get_lines()}
        assert list(lines) == ["training", "validation"]
        assert list(lines["training"].get_xdata()) == [1, 2, 3]
        assert list(lines["training"].get_ydata()) == history[name]
        assert list(lines["validation"].get_ydata()) == history[f"val_{name}"]
    assert history.plot(tmp_path / "curves.svg").read_bytes().startswith(b"<?xml")
    with pytest.raises(ValueError, match="nothing to plot"):
        gd.train.History().plot(tmp_path / "empty.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        history.plot(tmp_path / "missing" / "curves.png")


def test_history_plot_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    history = gd.train.History([{"epoch": 1, "loss": 0.5}])
    real_import = builtins.__import__

    def without_matplotlib(name, *args, **kwargs):
        if name.partition(".")[0] == "matplotlib":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    with pytest.raises(ImportError, match=r"History.plot needs matplotlib; install it with `pip install "
                                          r"matplotlib` \(or `pip install -e '\.\[plot\]'` in the gdnet checkout\)"):
        history.plot(tmp_path / "curves.png")
    assert list(tmp_path.iterdir()) == []


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(epochs=0), ValueError, "epochs must be an int >= 1"),
        (dict(epochs=2.0), ValueError, "epochs must be an int"),
        (dict(initial_epoch=-1), ValueError, "initial_epoch must be an int >= 0"),
        (dict(initial_epoch=3), ValueError, r"initial_epoch \(3\) is past the last epoch \(2\)"),
        (dict(verbose=3), ValueError, "verbose must be 0, 1 or 2"),
        (dict(metrics=("f1",)), ValueError, "unknown metric 'f1'"),
        (dict(metrics="accuracy"), TypeError, "metrics must be a sequence"),
        (dict(metrics=("accuracy", "accuracy")), ValueError, "used twice"),
        (dict(metrics=(3,)), TypeError, "a metric must be a name or a function"),
        (dict(callbacks=[print]), TypeError, "callbacks must be gdnet.train.Callback objects"),
        (dict(loss="cross_entropy"), TypeError, "loss must be a function"),
        (dict(val_loader=3), TypeError, "val_loader must be iterable"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    model, optimizer, train, _ = setup(validation=False)
    arguments = dict(loss=F.cross_entropy, epochs=2, verbose=0)
    arguments.update(kwargs)
    before = weights(model)
    with pytest.raises(error, match=message):
        gd.train.fit(model, arguments.pop("loss"), optimizer, train, **arguments)
    assert all(np.array_equal(v, weights(model)[k]) for k, v in before.items())


def test_arguments_in_another_functions_order_are_named_before_anything_runs():
    model, optimizer, train, _ = setup(validation=False)
    before = weights(model)
    # evaluate and train_epoch take the loader before the loss; fit the loss before the loader
    with pytest.raises(TypeError, match=r"evaluate\(model, loader, loss_fn=cross_entropy\): loader must be "
                       r"iterable.*got function; loss_fn must be a function.*got DataLoader \(loader and loss_fn "
                       r"look swapped\)"):
        gd.train.evaluate(model, F.cross_entropy, train)
    with pytest.raises(TypeError, match=r"train_epoch\(model, loader, optimizer, .*optimizer must be an optimizer, "
                       r"with step\(\) and zero_grad\(\); got function$"):
        gd.train.train_epoch(model, train, F.cross_entropy)
    with pytest.raises(TypeError, match=r"train_epoch\(.*optimizer must be .*; got function; loss_fn must be .*"
                       r"got SGD \(optimizer and loss_fn look swapped\)"):
        gd.train.train_epoch(model, train, F.cross_entropy, optimizer)
    with pytest.raises(TypeError, match=r"fit\(model, loss, optimizer, train_loader, epochs\): loss must be a "
                       r"function.*got DataLoader; train_loader must be iterable.*got function \(loss and "
                       r"train_loader look swapped\)"):
        gd.train.fit(model, train, optimizer, F.cross_entropy, epochs=1, verbose=0)
    assert all(np.array_equal(v, weights(model)[k]) for k, v in before.items())


MODULE = r"got Sequential, a gdnet.nn.Module"


@pytest.mark.parametrize(
    "call, error, message",
    [
        # a Sequential is iterable (over its layers), so iterability alone lets it through
        (lambda m, o, t: gd.train.fit(m, F.cross_entropy, o, t, epochs=1, val_loader=m, verbose=0), TypeError,
         rf"fit\(.*\): val_loader must be iterable, yielding \(x, labels\) batches; {MODULE}$"),
        (lambda m, o, t: gd.train.fit(m, F.cross_entropy, o, m, epochs=1, verbose=0), TypeError,
         rf"fit\(.*\): train_loader must be iterable, .*; {MODULE}$"),
        (lambda m, o, t: gd.train.train_epoch(m, m, o), TypeError, rf"train_epoch\(.*\): loader must be .*; {MODULE}$"),
        (lambda m, o, t: gd.train.evaluate(m, m), TypeError, rf"evaluate\(.*\): loader must be .*; {MODULE}$"),
        # one batch (x, labels), or the dataset's arrays, given where a loader of batches goes
        (lambda m, o, t: gd.train.fit(m, F.cross_entropy, o, batch_of(t), epochs=1, verbose=0), TypeError,
         r"fit\(.*\): train_loader must be iterable, yielding \(x, labels\) batches; got a tuple of 2 arrays, one "
         r"batch \(pass \[\(x, labels\)\], or gd.data.DataLoader\(gd.data.ArrayDataset\(x, labels\), "
         r"batch_size=...\)\)$"),
        (lambda m, o, t: gd.train.evaluate(m, batch_of(t)[0]), TypeError,
         r"evaluate\(.*\): loader must be iterable, .*; got Tensor$"),
        # the model where the loader goes and the loader where the model goes
        (lambda m, o, t: gd.train.evaluate(t, m), TypeError,
         rf"evaluate\(.*\): model must be a gdnet.nn.Module .*; got DataLoader; loader must be .*; {MODULE} "
         r"\(model and loader look swapped\)"),
        (lambda m, o, t: gd.train.train_epoch(t, m, o), TypeError, r"train_epoch\(.*\(model and loader look swapped\)"),
        (lambda m, o, t: gd.train.fit(t, F.cross_entropy, o, m, epochs=1, verbose=0), TypeError,
         r"fit\(.*\(model and train_loader look swapped\)"),
        (lambda m, o, t: gd.train.fit(o, F.cross_entropy, m, t, epochs=1, verbose=0), TypeError,
         r"fit\(.*: model must be a gdnet.nn.Module .*got SGD.*\(model and optimizer look swapped\)"),
        # a training pass needs an optimizer (evaluate has none)
        (lambda m, o, t: gd.train.train_epoch(m, t, None), TypeError,
         r"train_epoch\(.*\): optimizer must be an optimizer, with step\(\) and zero_grad\(\); got None$"),
        (lambda m, o, t: gd.train.fit(m, F.cross_entropy, None, t, epochs=1, verbose=0), TypeError,
         r"fit\(.*\): optimizer must be an optimizer, .*; got None$"),
        (lambda m, o, t: gd.train.fit(m, F.cross_entropy, StepOnly(), t, epochs=1, verbose=0), TypeError,
         r"fit: optimizer must be a gdnet.optim optimizer \(fit logs the rates of its param_groups\); got StepOnly"),
        # every number these functions take
        (lambda m, o, t: gd.train.train_epoch(m, t, o, progress=True, report_every=0), ValueError,
         "report_every must be an int >= 1; got 0"),
        (lambda m, o, t: gd.train.train_epoch(m, t, o, report_every=2.5), ValueError,
         "report_every must be an int >= 1; got 2.5"),
        (lambda m, o, t: gd.train.train_epoch(m, t, o, report_every=True), ValueError,
         "report_every must be an int >= 1; got True"),
        (lambda m, o, t: gd.train.fit(m, F.cross_entropy, o, t, epochs=1, verbose=1.0), ValueError,
         r"verbose must be 0, 1 or 2; got 1.0"),
    ],
)
def test_an_argument_of_the_wrong_kind_is_named_before_anything_runs(call, error, message):
    model, optimizer, train, _ = setup(validation=False)
    before = weights(model)
    with pytest.raises(error, match=message):
        call(model, optimizer, train)
    assert all(np.array_equal(v, weights(model)[k]) for k, v in before.items())
    assert all(float(group["lr"]) == 0.1 for group in optimizer.param_groups)


def batch_of(loader):
    """The first (x, labels) batch of ``loader``, as a tuple of Tensors."""
    return tuple(next(iter(loader)))


def test_a_list_of_batches_is_a_loader():
    model, optimizer, train, _ = setup(validation=False)
    batches = [tuple(batch) for batch in train]
    loss, accuracy = gd.train.train_epoch(model, batches, optimizer)
    assert math.isfinite(loss) and 0.0 <= accuracy <= 1.0


class StepOnly:
    """An optimizer-like object without param_groups."""

    def step(self):
        pass

    def zero_grad(self):
        pass


class Wrapped:
    """A model that is not a gdnet Module: callable, with train() and eval()."""

    def __init__(self, module):
        self.module = module

    def __call__(self, x):
        return self.module(x)

    def train(self, mode=True):
        self.module.train(mode)

    def eval(self):
        self.module.eval()


def test_a_model_that_is_not_a_module_but_has_train_and_eval_runs():
    model, optimizer, train, val = setup()
    plain, plain_optimizer, plain_train, plain_val = setup()
    assert gd.train.train_epoch(Wrapped(model), train, optimizer) == gd.train.train_epoch(plain, plain_train,
                                                                                         plain_optimizer)
    assert gd.train.evaluate(Wrapped(model), val) == gd.train.evaluate(plain, plain_val)
    assert model.training


def test_an_empty_loader_is_a_clear_error():
    model, optimizer, _, _ = setup()
    with pytest.raises(ValueError, match="the loader is empty"):
        gd.train.fit(model, F.cross_entropy, optimizer, [], epochs=1, verbose=0)


def test_line_format_reads_like_the_command():
    line = fit_module._epoch_line(3, 10, {"loss": 0.25, "accuracy": 0.9, "lr": 0.1, "seconds": 1.5,
                                          "examples_per_second": 40000.0})
    assert line == "epoch   3/10  loss 0.2500  accuracy 0.9000  lr 0.1  1.50 s  40000 ex/s"
