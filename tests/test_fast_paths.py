"""Backend fast paths give the same numbers as the portable reference in gdnet's core."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import host_normal, make
from gdnet.backends import numpy_backend

import gdnet as gd
from gdnet.nn import functional as F


def _loss_and_grad(logits_host, labels_host, reduction, dtype):
    logits = make(logits_host, dtype, requires_grad=True)
    labels = gd.tensor(labels_host, dtype="int64")
    loss = F.cross_entropy(logits, labels, reduction=reduction)
    weights = make(np.linspace(0.5, 1.5, loss.size).reshape(loss.shape), dtype)
    (loss * weights).sum().backward()
    return loss.numpy(), logits.grad.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numpy_softmax_cross_entropy_fast_path_equals_reference(monkeypatch, reduction, dtype):
    logits_host = host_normal(16, 7, scale=3.0)
    labels_host = np.random.default_rng(1).integers(0, 7, size=16)
    with gd.use_backend("numpy"):
        assert "softmax_cross_entropy" in numpy_backend.FAST_PATHS
        fast = _loss_and_grad(logits_host, labels_host, reduction, dtype)
        monkeypatch.delitem(numpy_backend.FAST_PATHS, "softmax_cross_entropy")
        reference = _loss_and_grad(logits_host, labels_host, reduction, dtype)
    tolerance = 1e-6 if dtype == "float32" else 1e-13
    for got, expected in zip(fast, reference):
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


def test_fast_path_is_not_used_for_arrays_of_another_library(monkeypatch):
    calls = []

    class Recording:
        @staticmethod
        def forward(*args):
            calls.append("forward")
            raise AssertionError("a NumPy fast path was handed array_api_strict arrays")

    monkeypatch.setitem(numpy_backend.FAST_PATHS, "softmax_cross_entropy", Recording)
    with gd.use_backend("array_api_strict"):
        logits = make(host_normal(4, 3), "float64", requires_grad=True)
        labels = gd.tensor(np.array([0, 2, 1, 0]), dtype="int64")
    with gd.use_backend("numpy"):
        F.cross_entropy(logits, labels).backward()
    assert calls == []
    assert logits.grad is not None
