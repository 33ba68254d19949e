"""Streamed batches through pinned buffers and a copy stream (backends/_staging.py): the ring of
buffers, the ordering and the DataLoader around them, run on the CPU with a stand-in copier
(the CuPy and torch copiers themselves need a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
from gdnet.backends._staging import Copier, StagedUploader

import gdnet as gd


class FakeCopier(Copier):
    """Host buffers as "pinned" memory, copies that finish when waited for, and a log."""

    def __init__(self, backend):
        self.backend, self.log, self.allocated = backend, [], []

    def pinned(self, nbytes):
        buffer = bytearray(nbytes)
        self.allocated.append(nbytes)
        return buffer

    def host_view(self, buffer, nbytes):
        return np.frombuffer(buffer, dtype=np.uint8, count=nbytes)

    def copy(self, buffer, staged):
        event = {"buffer": id(buffer), "done": False}
        self.log.append(("copy", id(buffer)))
        return self.backend.asarray(np.array(staged)), event

    def wait(self, event):
        self.log.append(("wait", event["buffer"]))
        event["done"] = True


def test_batches_arrive_converted_and_buffers_wait_for_their_last_copy():
    with gd.use_backend("numpy") as backend:
        copier = FakeCopier(backend)
        uploader = StagedUploader(backend, copier, depth=2)
        batches = [np.full((2, 3), i, dtype=np.uint8) for i in range(4)]
        sent = [uploader.send(batch, "float32") for batch in batches]
    for i, array in enumerate(sent):
        assert array.dtype == np.float32 and array.tolist() == [[float(i)] * 3] * 2
    first, second = copier.log[0][1], copier.log[1][1]
    assert first != second  # two buffers, used in turn
    # the third batch reuses the first buffer only after waiting for the copy that read it
    assert copier.log[2:] == [("wait", first), ("copy", first), ("wait", second), ("copy", second)]
    assert copier.allocated == [24, 24] and uploader.owns_result


def test_a_larger_batch_gets_a_larger_buffer():
    with gd.use_backend("numpy") as backend:
        copier = FakeCopier(backend)
        uploader = StagedUploader(backend, copier, depth=1)
        uploader.send(np.zeros((2,), dtype=np.int64), "int64")
        big = uploader.send(np.arange(5), "int64")
        uploader.send(np.arange(3), "int64")  # fits the buffer already there
    assert copier.allocated == [16, 40] and big.tolist() == [0, 1, 2, 3, 4]


def test_the_streamed_loader_sends_the_next_batch_before_handing_out_this_one(backend, monkeypatch):
    events = []

    class Recording(StagedUploader):
        def send(self, array, dtype):
            events.append(("send", dtype))
            return super().send(array, dtype)

    monkeypatch.setattr(type(backend), "uploader", lambda self: Recording(self, FakeCopier(self)))
    rng = np.random.default_rng(0)
    dataset = gd.data.ArrayDataset(rng.integers(0, 256, size=(10, 2, 2), dtype=np.uint8), rng.integers(0, 3, size=10))
    streamed = gd.data.DataLoader(dataset, batch_size=4, shuffle=True, seed=1, resident=False)
    resident = gd.data.DataLoader(dataset, batch_size=4, shuffle=True, seed=1, resident=True)
    got = []
    for x, y in streamed:
        events.append(("batch",))
        got.append((x.numpy(), y.numpy()))
    # inputs (uint8, cast on the device) and targets of batch k+1 are sent before batch k is handed out
    assert events == [("send", "uint8"), ("send", "int64")] * 2 + [("batch",), ("send", "uint8"),
                                                                      ("send", "int64"), ("batch",), ("batch",)]
    for (x, y), (rx, ry) in zip(got, resident):
        np.testing.assert_array_equal(x, rx.numpy())
        np.testing.assert_array_equal(y, ry.numpy())


def test_gpu_backends_stage_through_pinned_memory():
    pytest.importorskip("torch")
    from gdnet.backends import _base

    with gd.use_backend("torch", "cpu") as cpu:
        assert type(cpu.uploader()) is _base.Uploader  # host memory: nothing to stage
