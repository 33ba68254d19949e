"""A training step reads nothing back from the device.

Each test here trains a few steps of a model, batches from the DataLoader included, inside
``reads_refused``. On torch's meta device the arrays have no values, so any read raises; on
array_api_strict's device1 every conversion is refused; on CuPy synchronising is refused. The
other rows run the same steps (reading is free there, so there is nothing to prove, but the
steps must still work). ``fit`` is allowed exactly one read per pass, which is counted.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reads_refused

import gdnet as gd
from gdnet import backends, nn, optim
from gdnet.nn import functional as F
from gdnet.train.loop import METRICS, train_pass

pytestmark = pytest.mark.no_reads


def _images(n=24, side=8, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return gd.data.ArrayDataset(rng.integers(0, 256, size=(n, side, side), dtype=np.uint8),
                                rng.integers(0, classes, size=n), num_classes=classes)


def _sequences(n=24, steps=5, features=3, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return gd.data.ArrayDataset(rng.normal(size=(n, steps, features)).astype(np.float32),
                                rng.integers(0, classes, size=n), num_classes=classes)


class _LastStep(nn.Module):
    """A recurrent layer read out at its last step by a linear layer."""

    def __init__(self, recurrent, hidden, classes):
        super().__init__()
        self.recurrent, self.head = recurrent, nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.recurrent(x)
        return self.head(out[:, -1, :])


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 5))


def _cnn():
    return nn.Sequential(nn.Unflatten(1, (1, 8)), nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(64, 5))


MODELS = {
    "mlp-sgd": (_mlp, lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4), _images),
    "mlp-adamw-streamed": (_mlp, lambda p: optim.AdamW(p, lr=1e-3), _images),
    "cnn-batchnorm-maxpool-dropout-adam": (_cnn, lambda p: optim.Adam(p, lr=1e-3), _images),
    "lstm-sgd": (lambda: _LastStep(nn.LSTM(3, 6, batch_first=True), 6, 4), lambda p: optim.SGD(p, lr=0.1),
                 _sequences),
    "gru-adam": (lambda: _LastStep(nn.GRU(3, 6, batch_first=True), 6, 4), lambda p: optim.Adam(p, lr=1e-3),
                 _sequences),
}


@pytest.mark.parametrize("name", MODELS)
def test_training_steps_read_nothing_back(backend, monkeypatch, name):
    build, make_optimizer, data = MODELS[name]
    model = build()
    opt = make_optimizer(model.parameters())
    # one model's batches stream from the host (copied ahead of use); the others' are resident
    loader = gd.data.DataLoader(data(), batch_size=8, shuffle=True, resident=not name.endswith("streamed"))
    before = [p.numpy() for p in model.parameters()] if backend.holds_values else None
    with reads_refused(backend, monkeypatch):
        for _ in range(2):  # two epochs: the second shuffles and steps again with optimizer state
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                gd.optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
                opt.step()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    if before is not None:
        after = [p.numpy() for p in model.parameters()]
        assert any(not np.array_equal(a, b) for a, b in zip(after, before))  # it trained


@pytest.fixture
def counted_reads(backend, monkeypatch):
    """Counts transfers of device values to the host; on meta each returns zeros of the shape
    (any other read of a meta array raises, so the count is every read there)."""
    reads = []
    owner = type(backend)
    original = owner.to_host

    def counting(cls, array):
        reads.append(tuple(array.shape))
        if not backend.holds_values:
            return np.zeros(tuple(array.shape), dtype=np.float32)
        return original(array)

    monkeypatch.setattr(owner, "to_host", classmethod(counting))
    return reads


def test_fit_reads_once_per_pass(backend, monkeypatch, counted_reads):
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train = gd.data.DataLoader(_images(), batch_size=8, shuffle=True)  # 3 steps per epoch
    val = gd.data.DataLoader(_images(seed=1), batch_size=12)
    history = gd.train.fit(model, F.cross_entropy, opt, train, epochs=2, val_loader=val, verbose=0)
    assert len(history) == 2
    assert counted_reads == [(2,)] * 4  # loss and accuracy in one read: training then validation, each epoch


def test_the_progress_bar_reads_every_n_steps(backend, monkeypatch, counted_reads):
    class Bar:
        def __init__(self):
            self.updates, self.shown = 0, []

        def update(self, n):
            self.updates += n

        def set_postfix_str(self, text, refresh=False):
            self.shown.append(text)

    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    loader = gd.data.DataLoader(_images(n=56), batch_size=8)  # 7 steps
    bar = Bar()
    train_pass(model, loader, opt, F.cross_entropy, METRICS, bar, report_every=3)
    assert bar.updates == 7 and len(bar.shown) == 2  # after steps 3 and 6
    assert len(counted_reads) == 3  # those two, and the pass's total


def test_fit_checks_the_loaders_labels_against_the_model_without_reading(backend, monkeypatch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))  # 3 scores, labels up to 4
    opt = optim.SGD(model.parameters(), lr=0.05)
    loader = gd.data.DataLoader(_images(), batch_size=8)
    assert loader.label_range == (0, 4)
    before = [p.numpy() for p in model.parameters()] if backend.holds_values else None
    with reads_refused(backend, monkeypatch):
        with pytest.raises(ValueError, match=r"labels go up to 4, but the model gives 3 scores"):
            gd.train.fit(model, F.cross_entropy, opt, loader, epochs=1, verbose=0)
    if before is not None:  # refused before the first step
        assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))


def test_binary_cross_entropy_checks_its_range_only_where_reads_are_free(backend, monkeypatch):
    probabilities = gd.tensor(np.array([0.2, 1.5], dtype=np.float32))
    target = gd.tensor(np.array([0.0, 1.0], dtype=np.float32))
    owner = backends.owner(probabilities.data)
    if owner.value_range(probabilities.data) is not None:
        with pytest.raises(ValueError, match="probabilities in"):
            F.binary_cross_entropy(probabilities, target)
        return
    with reads_refused(backend, monkeypatch):
        loss = F.binary_cross_entropy(probabilities, target)
    assert loss.shape == ()
