"""The backend matrix every test can run on, in one process.

Rows: numpy; array_api_strict on CPU_DEVICE (strictness), on device1 (device mixing and hidden
host conversions, as CuPy would hit) and on no_float64 (float32 only); cupy (skips without a
CUDA device). Use the ``backend`` fixture to run a test on every row.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdnet as gd
from gdnet import backends

MATRIX = [
    pytest.param(("numpy", None), id="numpy"),
    pytest.param(("array_api_strict", "CPU_DEVICE"), id="strict-cpu"),
    pytest.param(("array_api_strict", "device1"), id="strict-device1"),
    pytest.param(("array_api_strict", "no_float64"), id="strict-no_float64"),
    pytest.param(("cupy", None), id="cupy", marks=pytest.mark.cupy),
]


def pytest_configure(config):
    config.addinivalue_line("markers", "cupy: needs a CUDA device (skipped elsewhere)")


@pytest.fixture(params=MATRIX)
def backend(request):
    """Runs the test with this row's backend active and every generator seeded with 0."""
    name, device = request.param
    if name == "array_api_strict":
        pytest.importorskip("array_api_strict")
    reason = backends.backend_class(name).unavailable_reason()
    if reason:
        pytest.skip(reason)
    gd.manual_seed(0)
    with gd.use_backend(name, device) as active:
        yield active


@pytest.fixture
def float_dtype(backend) -> str:
    """float64 where the row has it (tight gradient checks), else float32."""
    return "float64" if backend.supports_dtype("float64") else "float32"


@pytest.fixture(autouse=True)
def _seeded():
    gd.manual_seed(0)
    yield


def host_normal(*shape, seed=0, scale=1.0):
    """Deterministic host draws for test inputs."""
    return np.random.default_rng(seed).normal(0.0, scale, size=shape)


def make(host, dtype="float64", requires_grad=False) -> gd.Tensor:
    """A Tensor on the active backend from host data."""
    return gd.tensor(np.asarray(host), dtype=dtype, requires_grad=requires_grad)


def rel_err(got, want) -> float:
    """Largest absolute difference over the largest magnitude of ``want``; the floor lets an
    all-zero expected gradient match float64 rounding noise (below 1e-15)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if not want.size:
        return 0.0
    return float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-9)


def peak_memory(action) -> int:
    """The most bytes Python (and NumPy, which reports its arrays to tracemalloc) held at once
    while ``action()`` ran, above what was held before."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
