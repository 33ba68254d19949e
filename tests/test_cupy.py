"""CuPy only: training on a second GPU whatever device is current. Skips without two CUDA
devices (scripts/gpu-check.sh runs it on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest

import gdnet as gd
from gdnet import backends, nn, optim
from gdnet.nn import functional as F

pytestmark = [pytest.mark.cupy, pytest.mark.cuda]


def _two_gpus():
    if backends.backend_class("cupy").unavailable_reason() is not None:
        pytest.skip("needs CuPy and a CUDA device")
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two CUDA devices")
    return cupy


@pytest.mark.parametrize("make_optimizer", [lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                                            lambda p: optim.Adam(p, lr=1e-3)], ids=["sgd", "adam"])
def test_training_on_cuda_1_runs_there_while_cuda_0_is_current(make_optimizer):
    cupy = _two_gpus()
    rng = np.random.default_rng(0)
    dataset = gd.data.ArrayDataset(rng.integers(0, 256, size=(64, 8, 8), dtype=np.uint8), rng.integers(0, 5, size=64))
    with gd.use_backend("cupy", "cuda:1"):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 5))
        opt = make_optimizer(model.parameters())
        for resident in (True, False):
            loader = gd.data.DataLoader(dataset, batch_size=16, shuffle=True, resident=resident)
            cupy.cuda.Device(0).use()  # another device current: every operation must still run on cuda:1
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        assert all(p.data.device.id == 1 for p in model.parameters())
        assert np.isfinite(loss.item())
