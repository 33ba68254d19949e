"""Processes that train one model together: rank, world size and collectives, as
``torch.distributed`` spells them.

Launch the same script on N processes with an MPI launcher and call ``init_process_group()``
first::

    mpiexec -n 4 python train.py          # as root: mpiexec --allow-run-as-root --oversubscribe ...

    import gdnet as gd
    gd.distributed.init_process_group()   # "auto": NCCL for cupy on GPUs, MPI otherwise
    rank, world = gd.distributed.get_rank(), gd.distributed.get_world_size()
    gd.distributed.all_reduce(t, op="mean")

Without a launcher the world is one process and every collective gives back its input, so the
same script runs unchanged on one machine. The engines are mpi4py (any backend: NumPy buffers
directly, other arrays through host copies or CUDA-aware MPI) and NCCL through
cupyx.distributed (cupy arrays, one GPU per rank); they live in gdnet.backends, and this module
is a thin layer over the communicator of the tensors' backend.
"""

from __future__ import annotations

from typing import Any

from .. import _backend
from ..autograd import Tensor, dtype_is, increment_version, namespace_of
from ..backends import comm as _comm
from ..backends.mpi_comm import open_world

__all__ = [
    "ReduceOp", "all_gather", "all_reduce", "barrier", "broadcast", "destroy_process_group", "get_rank",
    "get_world_size", "init_process_group", "is_initialized",
]

BACKENDS = ("auto", "mpi", "nccl")


class ReduceOp:
    """Names of the reductions ``all_reduce`` takes (``op="sum"`` is the same as ReduceOp.SUM)."""

    SUM, AVG, MAX, MIN = "sum", "mean", "max", "min"


OPS = ("sum", "mean", "max", "min")


class _ProcessGroup:
    """The job: its world (ranks, Python-object messages, abort) and one communicator per
    backend and device, made on first use."""

    def __init__(self, world: Any, engine: str):
        self.world, self.engine = world, engine
        self.rank, self.size, self.local_rank = world.rank, world.size, world.local_rank
        self._communicators: dict[tuple[str, str], Any] = {}

    def communicator(self, array: Any):
        """The communicator of ``array``'s backend (found through the registry) and device,
        made on first use; a TypeError naming its type for an object of no backend."""
        backend = _backend.backend_for(array)
        key = (backend.name, backend.device_label())
        found = self._communicators.get(key)
        if found is None:
            found = self._communicators[key] = backend.communicator(self.world, self.engine)
        return found


_GROUP: _ProcessGroup | None = None


def _group() -> _ProcessGroup:
    if _GROUP is None:
        raise RuntimeError(
            "gdnet.distributed is not initialized: call gd.distributed.init_process_group() before any "
            "collective, DistributedDataParallel or DataLoader(distributed=True) (without an MPI launcher it "
            "gives a world of one process)"
        )
    return _GROUP


def init_process_group(backend: str = "auto") -> None:
    """Join the job this process was launched in.

    Under an MPI launcher (``mpiexec -n N``, ``mpirun``, ``srun``) rank and world size come
    from MPI; without one the world is this process alone (``backend="mpi"`` still opens MPI).
    With the cupy backend active and more than one process, each rank moves the active
    backend to GPU ``local rank % GPUs on its machine`` (one GPU per rank). Once initialized,
    an exception that no code catches on any rank aborts the whole job, with its traceback,
    instead of leaving the other ranks waiting.

    Args:
        backend: "auto" (NCCL for the cupy backend, MPI otherwise), "mpi" or "nccl" (cupy
            arrays only; NCCL's id is sent over MPI).
    Raises:
        ValueError: an unknown backend, or "nccl" without the cupy backend.
        RuntimeError: called twice without ``destroy_process_group()`` between.
        gd.BackendUnavailableError: MPI is needed and mpi4py is not installed.
    """
    global _GROUP
    if backend not in BACKENDS:
        raise ValueError(f"unknown distributed backend {backend!r}; expected one of {BACKENDS}")
    if _GROUP is not None:
        raise RuntimeError("init_process_group() was already called; call destroy_process_group() first")
    active = _backend.get_backend()
    on_gpus = active.name == "cupy"
    if backend == "nccl" and not on_gpus:
        raise ValueError(f"the nccl backend needs the cupy backend (arrays on CUDA GPUs); the active backend is "
                         f"{active.describe()}: use backend='mpi'")
    launched = _comm.launched()
    world = open_world(use_mpi=launched or backend != "auto")
    engine = "local" if not launched and backend == "auto" else ("nccl" if backend == "nccl" or on_gpus else "mpi")
    if on_gpus and world.size > 1:
        devices = type(active).devices()
        _backend.set_backend(active.name, devices[world.local_rank % len(devices)])
    _GROUP = _ProcessGroup(world, engine)


def is_initialized() -> bool:
    """Whether ``init_process_group()`` has been called (and not undone)."""
    return _GROUP is not None


def destroy_process_group() -> None:
    """Leave the job: forget the communicators and stop aborting the job on an uncaught
    exception. A later ``init_process_group()`` joins again."""
    global _GROUP
    if _GROUP is not None:
        _GROUP.world.close()
        _GROUP = None


def get_rank() -> int:
    """This process's rank, 0 to world size - 1."""
    return _group().rank


def get_world_size() -> int:
    """The number of processes in the job."""
    return _group().size


def barrier() -> None:
    """Wait until every rank has reached this call."""
    _group().world.barrier()


def rank() -> int:
    """This process's rank, 0 before ``init_process_group()`` (for code that also runs alone)."""
    return 0 if _GROUP is None else _GROUP.rank


def world_size() -> int:
    """The world size, 1 before ``init_process_group()``."""
    return 1 if _GROUP is None else _GROUP.size


def is_main_process() -> bool:
    """Rank 0, or not distributed: the process that prints and writes files."""
    return _GROUP is None or _GROUP.rank == 0


def abort(status: int) -> None:
    """End every process of the job with exit status ``status`` (only this one when alone)."""
    if _GROUP is not None and _GROUP.size > 1:
        _GROUP.world.abort(status)
    raise SystemExit(status)


def _check_tensor(tensor: Any, what: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what} takes a gd.Tensor; got {type(tensor).__name__}")
    return tensor


def reduce_array(array: Any, op: str = "sum") -> Any:
    """All-reduce of a raw array: the result (the input's memory may be reused for it)."""
    if op not in OPS:
        raise ValueError(f"unknown reduction {op!r}; expected one of {OPS}")
    group = _group()
    xp = namespace_of(array)
    if op == "mean" and not dtype_is(xp, array.dtype, "real floating"):
        raise ValueError(f"op='mean' needs a floating tensor; got dtype {array.dtype} (use 'sum')")
    result = group.communicator(array).all_reduce(array, "sum" if op == "mean" else op)
    return result * (1.0 / group.size) if op == "mean" and group.size > 1 else result


def broadcast_array(array: Any, src: int = 0) -> Any:
    """Broadcast of a raw array from rank ``src``: the result (the input's memory may be reused)."""
    return _group().communicator(array).broadcast(array, src)


def communicator_for(array: Any):
    """The communicator for arrays like ``array`` (its backend and device)."""
    return _group().communicator(array)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (small Python values: shapes, names, seeds), in rank order."""
    return _group().world.allgather_object(obj)


def gather_array(array: Any, check: bool = True) -> Any:
    """All-gather of a raw array: shape (world size, *array.shape), row r from rank r.
    ``check`` first compares every rank's shape and dtype (one more, small, collective)."""
    group = _group()
    shapes = all_gather_objects((tuple(array.shape), str(array.dtype))) if check and group.size > 1 else []
    if any(shape != shapes[0] for shape in shapes):
        listing = ", ".join(f"rank {r}: {shape} {dtype}" for r, (shape, dtype) in enumerate(shapes))
        raise ValueError(f"all_gather needs tensors of one shape and dtype on every rank; got {listing}")
    return group.communicator(array).all_gather(array)


def all_reduce(tensor: Tensor, op: str = "sum") -> None:
    """Reduce ``tensor`` over all ranks, in place: every rank's tensor ends holding the sum (or
    mean, maximum, minimum) of the ranks' values, with its shape, dtype and device (NumPy
    reduces in the tensor's own memory; other backends replace ``tensor.data``).

    Args:
        tensor: the same shape and dtype on every rank.
        op: "sum", "mean" (floating tensors), "max" or "min" (or ``ReduceOp.SUM`` ...).
    """
    tensor = _check_tensor(tensor, "all_reduce")
    tensor.data = reduce_array(tensor.data, op)
    increment_version(tensor)  # a graph that saved the old values refuses to backward


def broadcast(tensor: Tensor, src: int = 0) -> None:
    """Give every rank rank ``src``'s values of ``tensor``, in place (as ``all_reduce``)."""
    tensor = _check_tensor(tensor, "broadcast")
    group = _group()
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < group.size:
        raise ValueError(f"src must be a rank from 0 to {group.size - 1}; got {src!r}")
    tensor.data = broadcast_array(tensor.data, src)
    increment_version(tensor)


def all_gather(tensor_list: Any, tensor: Tensor | None = None) -> list[Tensor] | None:
    """Every rank's ``tensor``, in rank order: ``all_gather(t)`` returns the list;
    PyTorch's ``all_gather(tensor_list, t)`` fills ``tensor_list`` in place instead.

    Raises:
        ValueError: the ranks' tensors differ in shape or dtype.
    """
    fill = tensor is not None
    if not fill:
        tensor_list, tensor = None, tensor_list
    tensor = _check_tensor(tensor, "all_gather")
    gathered = gather_array(tensor.data)
    parts = [Tensor(gathered[r, ...]) for r in range(gathered.shape[0])]
    if not fill:
        return parts
    tensor_list[:] = parts
    return None
