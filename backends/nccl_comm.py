"""Collectives on CuPy arrays: NCCL through cupyx.distributed, or CUDA-aware MPI.

The only GPU-only communication code in gdnet. NCCL's unique id travels over MPI
(``NCCLBackend(use_mpi=True)``), so the job is started with ``mpiexec`` as on the CPU. Every
NCCL collective runs on one communication stream of its own: it first waits (on the GPU, not
the host) for the work already queued on the current stream, and the current stream waits for
it before anything reads the result, so the all-reduce of one bucket overlaps the backward pass
still running on the compute stream, with no host synchronisation.
"""

from __future__ import annotations

import ctypes
import os

from .comm import Communicator, Pending
from .mpi_comm import MPICommunicator


class _StreamPending(Pending):
    def __init__(self, result, done, cupy):
        self._result, self._done, self._cupy = result, done, cupy

    def test(self) -> bool:
        return self._done.done

    def wait(self):
        # the compute stream waits for the collective on the GPU; the host does not wait
        self._cupy.cuda.get_current_stream().wait_event(self._done)
        return self._result


class NCCLCommunicator(Communicator):
    """NCCL on one GPU per rank (``device``: a cupy.cuda.Device), bootstrapped over MPI."""

    def __init__(self, world, device):
        import cupy
        from cupyx.distributed import NCCLBackend

        self._cupy, self._device = cupy, device
        self.rank, self.size = world.rank, world.size
        with device:
            self._nccl = NCCLBackend(world.size, world.rank, use_mpi=True)
            self._stream = cupy.cuda.Stream(non_blocking=True)

    def _on_comm_stream(self, run) -> _StreamPending:
        cupy = self._cupy
        with self._device:
            self._stream.wait_event(cupy.cuda.get_current_stream().record())
            result = run(self._stream)
            return _StreamPending(result, self._stream.record(), cupy)

    def start_all_reduce(self, array, op="sum"):
        array = self._cupy.ascontiguousarray(array)
        return self._on_comm_stream(lambda stream: self._reduce(array, op, stream))

    def _reduce(self, array, op, stream):
        self._nccl.all_reduce(array, array, op, stream)
        return array

    def broadcast(self, array, src=0):
        array = self._cupy.ascontiguousarray(array)

        def run(stream):
            self._nccl.broadcast(array, src, stream)
            return array

        return self._on_comm_stream(run).wait()

    def all_gather(self, array):
        cupy = self._cupy
        array = cupy.ascontiguousarray(array)
        with self._device:
            gathered = cupy.empty((self.size, *array.shape), dtype=array.dtype)

        def run(stream):
            self._nccl.all_gather(array, gathered, array.size, stream)
            return gathered

        return self._on_comm_stream(run).wait()


def cuda_aware_mpi() -> bool:
    """Whether the MPI library takes device pointers (Open MPI's MPIX_Query_cuda_support);
    ``GDNET_CUDA_AWARE_MPI=1`` or ``0`` overrides the answer."""
    setting = os.environ.get("GDNET_CUDA_AWARE_MPI")
    if setting in ("0", "1"):
        return setting == "1"
    with open("/proc/self/maps") as maps:  # the MPI library mpi4py loaded (Linux)
        paths = {line.split()[-1] for line in maps if "/libmpi.so" in line}
    for path in sorted(paths):
        try:
            return bool(ctypes.CDLL(path).MPIX_Query_cuda_support())
        except (OSError, AttributeError):
            continue
    return False


class CudaAwareMPICommunicator(MPICommunicator):
    """MPI on device buffers: the current stream is synchronised first, since MPI knows nothing
    of CUDA streams, and results are new device arrays."""

    def __init__(self, world, device):
        import cupy

        self._cupy, self._device = cupy, device
        super().__init__(world, self._device_copy, lambda array: array, in_place=True)

    def _device_copy(self, array):
        with self._device:
            copy = self._cupy.array(array, order="C", copy=True)
            self._cupy.cuda.get_current_stream().synchronize()
        return copy

    def _buffer(self, array):
        return self._device_copy(array)

    def all_gather(self, array):
        host = self._buffer(array)
        with self._device:
            gathered = self._cupy.empty((self.size, *host.shape), dtype=host.dtype)
        self.comm.Allgather(host, gathered)
        return gathered

