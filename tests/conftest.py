"""The backend matrix every test can run on, in one process.

The rows come from the backend registry (each Backend class's ``test_rows``): numpy;
array_api_strict on CPU_DEVICE (strictness), on device1 (device mixing and hidden host
conversions, as a GPU would hit) and on no_float64 (float32 only); torch on cpu (a second real
library), on meta (arrays without values: training steps only, to prove nothing is read back)
and on cuda; cupy. Rows whose library or device is missing skip themselves. Use the ``backend``
fixture to run a test on every row.

Rows whose arrays hold no values (torch-meta) run only tests marked ``no_reads``: tests that
build and step models and read nothing until they leave the row's backend.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import gdnet as gd
from gdnet import backends

# rows on a CUDA device carry the `cuda` mark (scripts/gpu-check.sh selects them)
_CUDA_ROWS = {"cupy", "torch-cuda"}


def matrix() -> list:
    """One pytest param per test row of every registered backend, in registry order."""
    rows = []
    for name in backends.names():
        for row_id, device in backends.backend_class(name).test_rows:
            marks = [pytest.mark.cuda] if row_id in _CUDA_ROWS else []
            if name == "cupy":
                marks.append(pytest.mark.cupy)
            rows.append(pytest.param((name, device), id=row_id, marks=marks))
    return rows


MATRIX = matrix()


def pytest_configure(config):
    # The suite's arrays are tiny: torch's thread pool only adds contention (on a busy 2-core
    # machine one small float64 matmul took 20-40 ms on two threads, 5 us on one)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(1)
    config.addinivalue_line("markers", "cupy: needs a CUDA device (skipped elsewhere)")
    config.addinivalue_line("markers", "cuda: a row on a CUDA device (skipped elsewhere)")
    config.addinivalue_line(
        "markers", "no_reads: runs on rows whose arrays hold no values (torch-meta): reads nothing back")


def _holds_values(row) -> bool:
    name, device = row
    return backends.backend_class(name).device_holds_values(device)


def pytest_collection_modifyitems(config, items):
    """Rows without values run only the tests marked no_reads; the rest leave them out."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        row = callspec.params.get("backend") if callspec is not None else None
        if row is not None and not _holds_values(row) and item.get_closest_marker("no_reads") is None:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=MATRIX)
def backend(request):
    """Runs the test with this row's backend active and every generator seeded with 0."""
    name, device = request.param
    reason = backends.backend_class(name).unavailable_reason(device)
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


def write_tiny_fashion_mnist(root) -> None:
    """96 training and 40 test images (random pixels, labels 0-9 in turn) in Fashion-MNIST's
    file format, in the folder ``root``: a data root for runs of the command and the examples."""
    from gdnet.data.idx import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 96), ("t10k", 40)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))


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


def dead_process_id() -> int:
    """The id of a process that has ended (a child run to completion)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def make_stale(path) -> None:
    """Make ``path`` look unchanged for longer than a writer's stale temporary file must be."""
    import os

    from gdnet import _io

    old = os.stat(path).st_mtime - _io.STALE_AFTER_S - 1
    os.utime(path, (old, old))


def _refuse(*args, **kwargs):
    raise AssertionError("a device value was read back to the host")


@contextlib.contextmanager
def reads_refused(backend, monkeypatch):
    """Inside the block, reading a device value back fails: torch-meta arrays hold none,
    array_api_strict's device1 arrays refuse every conversion to a Python value or to NumPy, and
    CuPy refuses to synchronise. On the other rows, where reading is free, the block runs as is."""
    if backend.name == "cupy":
        cupyx = pytest.importorskip("cupyx")
        with cupyx.allow_synchronize(False):
            yield
        return
    if backend.name != "array_api_strict" or "device1" not in str(backend.device):
        yield
        return
    array = type(backend.xp.asarray(0, device=backend.device))
    with monkeypatch.context() as patch:
        # reading is free on array_api_strict, so label checks read; skip them, as a GPU does
        patch.setattr(type(backend), "value_range", classmethod(lambda cls, values: None))
        for method in ("__bool__", "__float__", "__int__", "__index__", "__complex__", "__array__", "__dlpack__",
                       "to_device"):
            patch.setattr(array, method, _refuse, raising=False)
        yield
