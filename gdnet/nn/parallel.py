"""DistributedDataParallel: one model replica per process, gradients averaged after backward.

After PyTorch's ``torch/nn/parallel/distributed.py`` and ChainerMN's pure NCCL communicator:
parameters go into flat buckets, in the reverse of the model's order (roughly the order
backward produces their gradients); a post-accumulate-grad hook on each parameter counts it
ready, and once every gradient of a bucket is final the bucket is packed into one flat array and
its all-reduce starts (MPI's non-blocking Iallreduce, NCCL on its own stream), overlapping the
rest of the backward pass. At the end of the pass (a ``queue_callback``) every all-reduce is
completed, scaled by 1 / world size and unpacked into ``.grad``, so ``optimizer.step()`` reads
averaged gradients and stays unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .. import distributed
from ..autograd import Tensor, dtype_is, increment_version, is_grad_enabled, namespace_of, no_grad, queue_callback
from .module import Module, Parameter

MB = 2**20
# PyTorch's first bucket is small (dist._DEFAULT_FIRST_BUCKET_BYTES), so the first all-reduce
# starts early in the backward pass
FIRST_BUCKET_BYTES = 1 * MB


def _itemsize(xp: Any, dtype: Any) -> int:
    info = xp.finfo(dtype) if dtype_is(xp, dtype, "real floating") else xp.iinfo(dtype)
    return info.bits // 8


def _flat(tensors: list[Tensor]) -> Any:
    """The tensors' values in one new 1-D array (always a copy: collectives reuse it)."""
    xp = namespace_of(tensors[0].data)
    return xp.concat([xp.reshape(t.data, (-1,)) for t in tensors])


def _pieces(flat: Any, like: list[Tensor]) -> Iterator[Any]:
    """``flat`` cut back into arrays of ``like``'s shapes."""
    xp = namespace_of(flat)
    start = 0
    for tensor in like:
        stop = start + tensor.size
        yield xp.reshape(flat[start:stop], tensor.shape)
        start = stop


def broadcast_tensors(tensors: list[Tensor], src: int = 0) -> None:
    """Give every rank rank ``src``'s values of ``tensors``: one broadcast per dtype."""
    if distributed.world_size() == 1:
        return
    by_dtype: dict[Any, list[Tensor]] = {}
    for tensor in tensors:
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for group in by_dtype.values():
        flat = distributed.broadcast_array(_flat(group), src)
        xp = namespace_of(flat)
        for tensor, piece in zip(group, _pieces(flat, group)):
            tensor.data = xp.asarray(piece, copy=True)  # each its own memory: updates are in place
    increment_version(tensors)


class _Bucket:
    """Parameters whose gradients travel in one all-reduce."""

    def __init__(self, params: list[Parameter]):
        self.params = params
        self.waiting = len(params)  # gradients not yet final in this backward pass
        self.pending: Any = None  # the started all-reduce

    def start(self, communicator) -> None:
        grads = [p.grad if p.grad is not None else Tensor(_zeros_like(p.data)) for p in self.params]
        self.pending = communicator.start_all_reduce(_flat(grads), "sum")


def _zeros_like(array: Any) -> Any:
    return namespace_of(array).zeros(array.shape, dtype=array.dtype, device=array.device)


def assign_buckets(params: list[Parameter], cap_bytes: int,
                   first_bytes: int = FIRST_BUCKET_BYTES) -> list[list[Parameter]]:
    """Parameters (given in the model's order) -> buckets of one dtype each, filled in reverse
    order up to ``cap_bytes`` (the first bucket up to ``min(first_bytes, cap_bytes)``); a
    parameter larger than the cap gets a bucket of its own."""
    open_buckets: dict[Any, list[Parameter]] = {}
    sizes: dict[Any, int] = {}
    closed: list[list[Parameter]] = []
    for param in reversed(params):
        key = param.dtype
        bucket = open_buckets.setdefault(key, [])
        bucket.append(param)
        sizes[key] = sizes.get(key, 0) + param.size * _itemsize(param.xp, param.dtype)
        if sizes[key] >= (min(first_bytes, cap_bytes) if not closed else cap_bytes):
            closed.append(open_buckets.pop(key))
            sizes.pop(key)
    closed += [bucket for bucket in open_buckets.values() if bucket]
    position = {id(p): i for i, p in enumerate(reversed(params))}
    return sorted(closed, key=lambda bucket: position[id(bucket[0])])


def _layout(module: Module) -> list[tuple[str, str, tuple[int, ...], str]]:
    entries = [("parameter", name, p.shape, str(p.dtype)) for name, p in module.named_parameters()]
    return entries + [("buffer", name, b.shape, str(b.dtype)) for name, b in module.named_buffers()]


def _check_same_model(module: Module) -> None:
    """ValueError on every rank unless every rank's model has the same parameters and buffers
    (names, shapes, dtypes, order): gradients of different shapes would be summed as garbage."""
    layouts = distributed.all_gather_objects(_layout(module))
    first = {(kind, name): (shape, dtype) for kind, name, shape, dtype in layouts[0]}
    for rank, layout in enumerate(layouts):
        if layout == layouts[0]:
            continue
        mine = {(kind, name): (shape, dtype) for kind, name, shape, dtype in layout}
        problems = [f"{kind} {name!r} of rank 0 is missing" for kind, name in first if (kind, name) not in mine]
        problems += [f"{kind} {name!r} is not on rank 0" for kind, name in mine if (kind, name) not in first]
        problems += [f"{kind} {name!r} has shape {mine[kind, name][0]} ({mine[kind, name][1]}) there and "
                     f"{first[kind, name][0]} ({first[kind, name][1]}) on rank 0"
                     for kind, name in mine if (kind, name) in first and mine[kind, name] != first[kind, name]]
        raise ValueError(f"DistributedDataParallel: the model on rank {rank} differs from rank 0's: "
                         + ("; ".join(problems) or "its parameters are registered in another order")
                         + "; every rank must build the same model")


class DistributedDataParallel(Module):
    """Data parallelism across processes: wrap the model, train as usual.

    Every rank holds a replica. Wrapping checks that every rank built the same model and copies
    rank 0's parameters and buffers to all. In each training step, backward's gradients are
    averaged over the ranks in flat buckets, each bucket's all-reduce started as soon as its
    gradients are final (overlapping the rest of the backward pass where the engine allows) and
    all finished before ``backward()`` returns, so the optimizer steps every replica alike.
    Each rank should see its own shard of the data (``DataLoader(..., distributed=True)``); with
    the mean loss, 2 ranks x batch 64 take the same steps as 1 process x batch 128.

    Unlike PyTorch's, ``state_dict()`` and ``named_parameters()`` give the wrapped module's
    names without a "module." prefix, so checkpoints move between 1 and N processes.
    A parameter that gets no gradient on a rank counts as a zero gradient there (every replica
    receives the averaged gradient); parameters with ``requires_grad=False`` are left out.

    Args:
        module: the model (the same on every rank).
        bucket_cap_mb: the largest bucket in MiB (default 25, as PyTorch); the first one is at
            most 1 MiB so communication starts early. Larger buckets mean fewer, more
            efficient all-reduces but less overlap (README, "Scaling out").
        broadcast_buffers: copy rank 0's buffers (BatchNorm's running statistics) to every
            rank at the start of each training forward, as PyTorch (default True).

    Raises:
        RuntimeError: ``gd.distributed.init_process_group()`` was not called.
        ValueError: the ranks' models differ (the message names the parameter and shapes), or
            the model has no parameter that requires grad.

    Example:
        >>> gd.distributed.init_process_group()
        >>> model = gd.nn.parallel.DistributedDataParallel(model)
        >>> loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25, broadcast_buffers: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a gd.nn.Module; got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be a positive number of MiB; got {bucket_cap_mb!r}")
        distributed.get_world_size()  # raises unless init_process_group() was called
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise ValueError("DistributedDataParallel: the module has no parameter that requires grad")
        self.module = module
        self.bucket_cap_mb = bucket_cap_mb
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        _check_same_model(module)
        with no_grad():
            broadcast_tensors(list(module.parameters()) + [b for _, b in module.named_buffers()])
        self._buckets = [_Bucket(group) for group in assign_buckets(params, int(bucket_cap_mb * MB))]
        self._bucket_of = {p: bucket for bucket in self._buckets for p in bucket.params}
        self._next = 0  # the next bucket to start: buckets start in order, the same on every rank
        self._syncing = False  # this backward pass averages gradients
        self._finishing = False  # the end-of-pass callback is queued
        self._communicator: Any = None
        self._handles = [p.register_post_accumulate_grad_hook(self._gradient_ready) for p in params]

    # the wrapped module's tree, without a "module." prefix on names
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        yield from self.module.named_modules(prefix)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._syncing = is_grad_enabled() and self.require_backward_grad_sync
        if self._syncing and self.broadcast_buffers:
            buffers = [b for _, b in self.module.named_buffers()]
            if buffers:
                broadcast_tensors(buffers)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, forward and backward passes keep their gradients local (they accumulate in
        ``.grad``); the first backward after the block averages everything accumulated, so
        gradient accumulation communicates once per optimizer step."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # -- the backward pass ------------------------------------------------------------------
    def _gradient_ready(self, param: Parameter) -> None:
        if not self._syncing:
            return
        if not self._finishing:
            self._finishing = True
            self._communicator = distributed.communicator_for(param.data)
            queue_callback(self._finish)
        bucket = self._bucket_of[param]
        bucket.waiting -= 1
        buckets = self._buckets
        while self._next < len(buckets) and buckets[self._next].waiting == 0:
            buckets[self._next].start(self._communicator)
            self._next += 1
        for started in buckets[: self._next]:
            started.pending.test()  # lets MPI move started all-reduces along

    def _finish(self) -> None:
        """End of the backward pass: start what is left (buckets with a parameter that got no
        gradient), then wait for each all-reduce and hand out the averaged gradients."""
        try:
            for bucket in self._buckets[self._next:]:
                bucket.start(self._communicator)
            size = distributed.get_world_size()
            for bucket in self._buckets:
                flat = bucket.pending.wait()
                if size > 1:
                    flat = flat * (1.0 / size)
                for param, grad in zip(bucket.params, _pieces(flat, bucket.params)):
                    param.grad = Tensor(grad)
        finally:
            for bucket in self._buckets:
                bucket.waiting, bucket.pending = len(bucket.params), None
            self._next, self._syncing, self._finishing = 0, False, False

    def extra_repr(self) -> str:
        return f"buckets={len(self._buckets)}, bucket_cap_mb={self.bucket_cap_mb}"
