"""The numpy backend's threads: NumPy runs each elementwise pass on one core, so the backend's
fast paths split their large passes (and large matrix products) over a pool of its own.

Why the matrix products too: OpenBLAS, which NumPy's wheels bundle, keeps its worker threads
spinning for about 0.1 s after each multi-threaded call (``OPENBLAS_THREAD_TIMEOUT``, read once at
load). A training step calls BLAS every few milliseconds, so its workers never sleep and take the
cores the pool's passes need: on the 2-core machine of benchmarks/cnn.py, splitting the
elementwise passes gained nothing until BLAS stopped spinning (a step of 44 ms either way; 37 ms
with ``OPENBLAS_THREAD_TIMEOUT=4``). So while the backend's kernels run, BLAS runs on one thread
(``one_blas_thread``, through threadpoolctl), and ``matmul`` splits large products over the pool.
The BLAS thread count is process-wide: another thread calling BLAS during one of these calls runs
on one thread too.

``thread_count()``: OMP_NUM_THREADS where set (the variable PyTorch and OpenBLAS follow), else
OPENBLAS_NUM_THREADS, else the CPUs this process may run on. At 1 nothing is split and BLAS is
left alone.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

# elements below which a pass runs in one piece: handing a part to a thread and waiting for it
# costs about 20 microseconds, what a pass over some 10^5 float32 values takes
MIN_PARALLEL = 1 << 17
# multiply-adds below which a product runs as one BLAS call: OpenBLAS keeps products under
# 2^18 on one thread anyway, and up to here one thread finishes in a few tenths of a millisecond
MIN_PARALLEL_PRODUCT = 1 << 24

_pool: ThreadPoolExecutor | None = None
_count: int | None = None


def thread_count() -> int:
    """Threads the numpy backend's kernels split their work over (see the module docstring)."""
    global _count
    if _count is None:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            value = os.environ.get(name, "").strip()
            if value.isdigit() and int(value) > 0:
                _count = int(value)
                break
        else:
            _count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return _count


def _forget_pool() -> None:
    """In a forked child: the parent's worker threads do not exist there."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def parallel(work: Callable[[int, int], None], n: int, size: int) -> None:
    """``work(start, stop)`` over [0, n), one contiguous range per thread, the first in this one;
    one call for all of it where ``size`` elements are too few to share out."""
    global _pool
    parts = min(n, thread_count()) if size >= MIN_PARALLEL else 1
    if parts <= 1:
        work(0, n)
        return
    if _pool is None or _pool._max_workers < parts - 1:
        _pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="gdnet-numpy")
    bounds = [n * i // parts for i in range(parts + 1)]
    futures = [_pool.submit(work, bounds[i], bounds[i + 1]) for i in range(1, parts)]
    try:
        work(bounds[0], bounds[1])
    finally:
        for future in futures:
            future.result()


# -- BLAS on one thread ---------------------------------------------------------------------------
class _OneBlasThread:
    """Context manager: BLAS on one thread inside (nested uses share one setting), the previous
    thread counts restored on leaving the outermost; nothing where ``thread_count()`` is 1 or
    threadpoolctl finds no BLAS."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list = []
        self._libraries: list | None = None

    def _blas(self) -> list:
        if self._libraries is None:
            from threadpoolctl import ThreadpoolController

            self._libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        return self._libraries

    def __enter__(self) -> None:
        if thread_count() == 1:
            return
        with self._lock:
            if self._depth == 0:
                self._saved = [(library, library.num_threads) for library in self._blas()]
                for library, _ in self._saved:
                    library.set_num_threads(1)
            self._depth += 1

    def __exit__(self, *exc) -> None:
        if thread_count() == 1:
            return
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for library, count in self._saved:
                    library.set_num_threads(count)


one_blas_thread = _OneBlasThread()


def matmul(a, b, /):
    """``np.matmul(a, b)``; a large product of two 2-D float arrays is split by rows or columns
    (the longer side) over the threads, each part one single-threaded BLAS call."""
    # the size first: most products of a training step are small, and this runs for each one
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.shape[0] * a.shape[1] * b.shape[1] < MIN_PARALLEL_PRODUCT):
        return np.matmul(a, b)
    if not (a.dtype == b.dtype and a.dtype.kind == "f" and a.shape[1] == b.shape[0] and thread_count() > 1):
        return np.matmul(a, b)
    m, n = a.shape[0], b.shape[1]
    out = np.empty((m, n), dtype=a.dtype)
    if n >= m:
        def part(lo: int, hi: int) -> None:
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])
    else:
        def part(lo: int, hi: int) -> None:
            np.matmul(a[lo:hi], b, out=out[lo:hi])
    with one_blas_thread:
        parallel(part, max(m, n), MIN_PARALLEL)
    return out
