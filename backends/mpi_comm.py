"""MPI through mpi4py: the world of an ``mpiexec`` job and collectives on host buffers.

mpi4py moves any buffer-protocol object; NumPy arrays are reduced in their own memory (MPI's
IN_PLACE). Other backends reach MPI through host copies (``to_host`` / ``from_host``), or hand
device buffers straight to a CUDA-aware MPI (the cupy backend decides which).
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable

import numpy as np

from ._errors import BackendUnavailableError
from .comm import INSTALL_HINT, Communicator, LocalWorld, Pending


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise BackendUnavailableError(f"gdnet.distributed over MPI needs mpi4py; {INSTALL_HINT}") from exc
    return MPI


class MPIWorld:
    """The processes of an MPI job (COMM_WORLD, duplicated so gdnet's messages never meet the
    program's own). While open, an exception nobody catches on any rank aborts the whole job
    with MPI_Abort, after printing its traceback: a rank that stopped would otherwise leave the
    others waiting in a collective for ever (mpi4py's ``python -m mpi4py`` does the same)."""

    def __init__(self):
        MPI = self._MPI = _mpi()
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank = node.Get_rank()
        node.Free()
        self._previous_hook = sys.excepthook
        if self.size > 1:
            sys.excepthook = self._abort_on_exception

    def _abort_on_exception(self, kind, value, tb) -> None:
        sys.stderr.write(f"gdnet.distributed: rank {self.rank} of {self.size} raised; aborting the job\n")
        traceback.print_exception(kind, value, tb)
        self.abort(1)

    def barrier(self) -> None:
        self.comm.Barrier()

    def allgather_object(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def abort(self, status: int) -> None:
        """End every process of the job with exit status ``status`` (MPI_Abort)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self._MPI.COMM_WORLD.Abort(status)

    def close(self) -> None:
        if sys.excepthook == self._abort_on_exception:
            sys.excepthook = self._previous_hook
        self.comm.Free()


def open_world(use_mpi: bool):
    """The MPI world (``use_mpi``: mpi4py's COMM_WORLD, a world of one process without a
    launcher) or a world of one process that needs no MPI at all."""
    if not use_mpi:
        return LocalWorld()
    return MPIWorld()


_OPS = ("sum", "max", "min")


class _MPIPending(Pending):
    def __init__(self, request, host: np.ndarray, from_host: Callable[[np.ndarray], Any]):
        self._request, self._host, self._from_host = request, host, from_host

    def test(self) -> bool:
        return bool(self._request.Test())

    def wait(self) -> Any:
        self._request.Wait()
        return self._from_host(self._host)


class MPICommunicator(Communicator):
    """Collectives over MPI on the arrays of one backend.

    Args:
        world: the MPIWorld.
        to_host: array -> NumPy array with its values (or, for a CUDA-aware MPI, any buffer
            mpi4py accepts).
        from_host: such a buffer -> an array of the backend.
        in_place: ``to_host`` returns the array's own memory (NumPy), which MPI may write into
            when it is contiguous and writable; otherwise every collective works on a copy.
    """

    def __init__(self, world: MPIWorld, to_host: Callable[[Any], Any], from_host: Callable[[Any], Any],
                 in_place: bool):
        self._MPI = world._MPI
        self.comm = world.comm
        self.rank, self.size = world.rank, world.size
        self._to_host, self._from_host, self._in_place = to_host, from_host, in_place

    def _buffer(self, array: Any) -> np.ndarray:
        host = self._to_host(array)
        if self._in_place and host.flags.c_contiguous and host.flags.writeable:
            return host
        return np.array(host, order="C", copy=True)

    def _op(self, op: str):
        if op not in _OPS:
            raise ValueError(f"unknown reduction {op!r}; expected one of {_OPS}")
        return getattr(self._MPI, op.upper())

    def start_all_reduce(self, array, op="sum"):
        host = self._buffer(array)
        request = self.comm.Iallreduce(self._MPI.IN_PLACE, host, self._op(op))
        return _MPIPending(request, host, self._from_host)

    def all_reduce(self, array, op="sum"):
        host = self._buffer(array)
        self.comm.Allreduce(self._MPI.IN_PLACE, host, self._op(op))
        return self._from_host(host)

    def broadcast(self, array, src=0):
        host = self._buffer(array)
        self.comm.Bcast(host, root=src)
        return self._from_host(host)

    def all_gather(self, array):
        host = self._buffer(array)
        gathered = np.empty((self.size, *host.shape), dtype=host.dtype)
        self.comm.Allgather(host, gathered)
        return self._from_host(gathered)
