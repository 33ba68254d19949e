"""The training step's operation count (benchmarks/launches.py's figure) stays at its goal: at
most 20 non-view array operations per step of the 784-100-10 MLP on the torch backend, with SGD
momentum and with Adam, and no value read back. The count is exact (torch's dispatch mode sees
every operation), not a timing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import launches  # noqa: E402

import gdnet as gd  # noqa: E402
from gdnet import backends  # noqa: E402


@pytest.mark.parametrize("model", ["mlp-sgd", "mlp-adam"])
def test_an_mlp_step_on_torch_runs_at_most_20_operations_and_reads_nothing(model, monkeypatch):
    # as on a GPU: no label check (it reads values only where reading is free)
    monkeypatch.setattr(backends.backend_class("torch"), "value_range", classmethod(lambda cls, array: None))
    with gd.use_backend("numpy"):  # gdnet_phases switches backend; leave the numpy one active after
        counts, reads, operations = launches.count_step(launches.gdnet_phases(model, "torch", "cpu", False))
    assert sum(counts.values()) <= 20, operations
    assert reads == {}
    assert counts["update"] <= 2 and counts["loss"] == 2  # one multi-tensor update; fused cross-entropy


def test_pytorch_eager_is_counted_the_same_way():
    counts, _, _ = launches.count_step(launches.torch_phases("mlp-sgd", "cpu", fused=True))
    # index, cast and scale, index; two addmm and relu; log_softmax and nll_loss; fused SGD
    assert (counts["loader"], counts["forward"], counts["loss"], counts["update"]) == (4, 3, 2, 1)
