"""Batches of a host dataset as Tensors on the active backend's device.

Two ways to feed the device, picked at construction:

* resident: the whole dataset fits on the device, so it is uploaded once, in its stored dtype
  (uint8 images stay uint8, a quarter of float32). Each epoch moves one permutation to the
  device; each batch is a slice of it, an on-device gather, a cast and a scale. No host
  transfer or synchronisation happens per batch.
* streamed: batches are gathered on the host and copied to the device one batch ahead of use.

Both give the same batches for the same seed. With ``distributed=True`` each rank of a
gdnet.distributed job takes its own shard of every epoch, as PyTorch's DistributedSampler. The
batch size picks the flavour of gradient descent: ``len(dataset)`` is batch gradient descent, 1
is stochastic, in between mini-batch.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Iterator

from .. import distributed as _distributed
from .._backend import get_backend, host_rng
from ..autograd import Tensor, device_scope
from ..backends import Uploader, host
from ..backends.host import HostGenerator
from ..fast_paths import lookup
from .datasets import ArrayDataset

UINT8_SCALE = 1.0 / 255.0  # uint8 pixels 0..255 -> [0, 1]
_LARGEST_SEED = 2**63 - 1
_STATE_KEYS = ("seed", "epoch", "generator", "num_examples")


def _as_dataset(dataset: Any) -> ArrayDataset:
    if isinstance(dataset, ArrayDataset):
        return dataset
    if isinstance(dataset, tuple) and len(dataset) == 2:
        return ArrayDataset(*dataset)
    raise TypeError(
        f"dataset must be an ArrayDataset or an (inputs, targets) tuple of host arrays; got "
        f"{type(dataset).__name__}"
        + (f" of length {len(dataset)}" if isinstance(dataset, tuple) else "")
    )


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return value


def shard_size(num_examples: int, rank: int, num_replicas: int, drop_last: bool, pad: bool) -> int:
    """Examples of an epoch on ``rank`` of ``num_replicas`` (see ``shard``)."""
    if num_replicas == 1:
        return num_examples
    if drop_last:
        return num_examples // num_replicas
    if pad:
        return -(-num_examples // num_replicas)
    return len(range(rank, num_examples, num_replicas))


def shard(order: Any, rank: int, num_replicas: int, drop_last: bool, pad: bool) -> Any:
    """Rank ``rank``'s part of an epoch's ``order`` (a host index array), as PyTorch's
    DistributedSampler: the order cut (``drop_last``) or, with ``pad``, padded by repeating its
    start, to a multiple of ``num_replicas``; then every ``num_replicas``-th index from
    ``rank`` on. Without either the shards differ by at most one index."""
    if num_replicas == 1:
        return order
    if drop_last or pad:
        order = host.cyclic(order, shard_size(len(order), rank, num_replicas, drop_last, pad) * num_replicas)
    return order[rank::num_replicas]


class DataLoader:
    """Iterate over ``dataset`` in batches of Tensors on the active backend's device.

    Each ``for inputs, targets in loader`` is one epoch. Inputs come out float32 of shape
    (B, ...): uint8 data multiplied by 1/255 (so in [0, 1]), other data cast unscaled unless
    ``scale`` is given. Integer targets come out int64 of shape (B, ...), float targets float32;
    targets is None for a dataset without targets. B is ``batch_size`` except for a last,
    smaller batch (dropped with ``drop_last``).

    Args:
        dataset: an ArrayDataset, or an (inputs, targets) tuple of host arrays.
        batch_size: examples per batch, a positive int (len(dataset): batch gradient descent;
            1: stochastic gradient descent).
        shuffle: visit the examples in a new random order each epoch.
        drop_last: skip the last batch when it is smaller than batch_size.
        seed: seeds the loader's own shuffle generator; None draws one from gdnet's seeded host
            generator at construction (so ``gd.manual_seed`` makes runs repeat).
        resident: True uploads the dataset to the device once; False streams batches from the
            host; None (default) uploads when it takes under half the free device memory
            (always where the device is host memory).
        scale: multiply inputs by this after the cast to float32 (default 1/255 for uint8
            inputs, none otherwise).
        distributed: each rank of the gdnet.distributed job (``init_process_group()`` first)
            takes a disjoint shard of each epoch, as PyTorch's DistributedSampler: every rank
            draws the same seeded order (rank 0's seed when ``seed`` is None), pads it by
            repeating its first examples to a multiple of the world size (or, with
            ``drop_last``, cuts it to one), and takes every world-size-th example from its
            rank on. ``batch_size`` is per rank.
        pad: with ``distributed``, False leaves the epoch unpadded: the shards then differ by
            at most one example and together hold each example exactly once. For evaluation
            (exact metrics); training under DistributedDataParallel needs equal shards.
    Attributes:
        backend: the backend captured at construction; batches land on its device.
        resident: whether the dataset lives on the device.
        epoch: epochs started so far.
        rank, num_replicas: this rank and the world size (0 and 1 unless ``distributed``).
        num_samples: examples per epoch on this rank (the dataset's length unless ``distributed``).
        label_range: (lowest, highest) of integer targets, read once on the host here (None for
            float targets or none). A training step on a device whose reads are not free (a GPU)
            cannot check labels without synchronising, so ``fit`` compares this range with the
            model's number of scores instead, once, before the first step.
    Raises:
        RuntimeError: ``distributed=True`` before ``gd.distributed.init_process_group()``.
        ValueError: (distributed) the ranks' datasets differ in length, or their seeds differ.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        resident: bool | None = None,
        scale: float | None = None,
        distributed: bool = False,
        pad: bool = True,
    ):
        self.dataset = _as_dataset(dataset)
        self.num_examples = len(self.dataset)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be a positive int; got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size}")
        self.batch_size = batch_size
        self.shuffle = _check_flag(shuffle, "shuffle")
        self.drop_last = _check_flag(drop_last, "drop_last")
        self.distributed = _check_flag(distributed, "distributed")
        self.pad = _check_flag(pad, "pad")
        if self.num_examples == 0:
            raise ValueError("the dataset is empty; expected at least one example to batch")
        if resident is not None:
            _check_flag(resident, "resident")
        is_number = isinstance(scale, (int, float)) and not isinstance(scale, bool)
        if scale is not None and not (is_number and math.isfinite(scale)):
            raise ValueError(f"scale must be a finite number or None; got {scale!r}")
        drawn = seed is None
        if drawn:
            seed = host_rng().integers(0, _LARGEST_SEED)
        elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int or None; got {seed!r}")
        self.rank, self.num_replicas = 0, 1
        if self.distributed:
            seed = self._join(seed, drawn)
        self.num_samples = self._shard_size()
        if self.drop_last and batch_size > self.num_samples:
            where = (f"this rank's shard ({self.num_samples} of {self.num_examples} examples)" if self.distributed
                     else f"the dataset ({self.num_examples} examples)")
            raise ValueError(
                f"drop_last=True with batch_size={batch_size} larger than {where} gives no batches; expected "
                f"batch_size <= {self.num_samples} or drop_last=False"
            )
        self.seed = seed
        self._generator = HostGenerator(seed)
        self.epoch = 0

        self.backend = get_backend()
        inputs, targets = self.dataset.inputs, self.dataset.targets
        input_kind = host.dtype_kind(inputs)
        # floats travel as float32 (the device may lack float64); integers in their own dtype
        self._input_dtype = "float32" if input_kind == "f" else host.dtype_name(inputs)
        if scale is None and host.dtype_name(inputs) == "uint8":
            scale = UINT8_SCALE
        self.scale = None if scale is None else float(scale)
        self._target_dtype = None
        self.label_range = None
        if targets is not None:
            self._target_dtype = "float32" if host.dtype_kind(targets) == "f" else "int64"
            if self._target_dtype == "int64":
                self.label_range = host.value_range(targets)

        self.resident = self._decide_residency(resident)
        self._uploader = None  # made at the first streamed epoch
        self._device_inputs = self._device_targets = None
        if self.resident:
            self._device_inputs = self._upload(inputs, self._input_dtype)
            if targets is not None:
                self._device_targets = self._upload(targets, self._target_dtype)

    # -- sharding ------------------------------------------------------------------------------
    def _join(self, seed: int, drawn: bool) -> int:
        """Rank and world size from gdnet.distributed; every rank's seed and dataset length
        checked against rank 0's (a drawn seed is replaced by rank 0's)."""
        self.rank, self.num_replicas = _distributed.get_rank(), _distributed.get_world_size()
        ranks = _distributed.all_gather_objects((seed, drawn, self.num_examples))
        lengths = [n for _, _, n in ranks]
        if len(set(lengths)) > 1:
            raise ValueError(f"DataLoader(distributed=True): the ranks' datasets differ in length ({lengths} by "
                             "rank); expected the same dataset on every rank")
        seeds = [s for s, was_drawn, _ in ranks if not was_drawn]
        if seeds and (len(seeds) < len(ranks) or len(set(seeds)) > 1):
            given = [None if was_drawn else s for s, was_drawn, _ in ranks]
            raise ValueError(f"DataLoader(distributed=True): the ranks were given different seeds ({given} by "
                             "rank); expected one seed on every rank, or seed=None on every rank")
        return ranks[0][0]

    def _shard_size(self) -> int:
        return shard_size(self.num_examples, self.rank, self.num_replicas, self.drop_last, self.pad)

    def _shard(self, order: Any) -> Any:
        if order is None:
            order = host.arange(self.num_examples)
        return shard(order, self.rank, self.num_replicas, self.drop_last, self.pad)

    # -- placement -----------------------------------------------------------------------------
    def _device_bytes(self) -> int:
        inputs, targets = self.dataset.inputs, self.dataset.targets
        total = math.prod(inputs.shape) * host.itemsize(self._input_dtype)
        if targets is not None:
            total += math.prod(targets.shape) * host.itemsize(self._target_dtype)
        return total

    def _decide_residency(self, resident: bool | None) -> bool:
        if resident is False:
            return False
        free = self.backend.memory_free()
        if free is None:  # the device is host memory: uploading costs nothing extra
            return True
        needed = self._device_bytes()
        if resident is None:
            # half: leave the other half for parameters, activations and gradients
            return needed < free // 2
        if needed > free:
            raise ValueError(
                f"resident=True but the dataset needs {needed} bytes on {self.backend.describe()} "
                f"and {free} are free; expected resident=None (decide automatically) or "
                "resident=False (stream batches from the host)"
            )
        return True

    def _upload(self, array: Any, dtype: str) -> Any:
        """Host array -> device array of ``dtype`` (converted on the host first)."""
        return Uploader(self.backend).send(array, dtype)

    # -- batches -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch (on this rank)."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def _bounds(self) -> Iterator[tuple[int, int]]:
        for index in range(len(self)):
            start = index * self.batch_size
            yield start, min(start + self.batch_size, self.num_samples)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        """One epoch of (inputs, targets) batches. The shuffle order is drawn here, when the
        epoch starts, so ``state_dict()`` between epochs captures every future order."""
        order = self._generator.permutation(self.num_examples) if self.shuffle else None
        if self.distributed:
            order = self._shard(order)
        self.epoch += 1
        if self.resident:
            device_order = None
            if order is not None:
                # the epoch's one host->device transfer
                device_order = self.backend.asarray(order, dtype=self.backend.xp.int64)
            return self._resident_batches(device_order)
        return self._streamed_batches(order)

    def _resident_batches(self, device_order: Any) -> Iterator[tuple[Tensor, Tensor | None]]:
        xp = self.backend.xp
        inputs, targets = self._device_inputs, self._device_targets
        # a permutation's entries lie in [0, n): the backend may gather without wrapping negatives
        take = lookup("take_rows", inputs) or partial(xp.take, axis=0)  # the reference: xp.take
        scope = device_scope(inputs)  # the loader's device, whichever is current (CuPy)
        for start, stop in self._bounds():
            if device_order is None:  # slices: views of the dataset, which _finish copies
                batch_inputs = inputs[start:stop, ...]
                batch_targets = None if targets is None else targets[start:stop, ...]
                yield self._finish(batch_inputs, batch_targets, scope=scope)
            else:
                yield self._finish(inputs, targets, scope=scope, take=take, indices=device_order[start:stop])

    def _host_batches(self, order: Any) -> Iterator[tuple[Any, Any]]:
        inputs, targets = self.dataset.inputs, self.dataset.targets
        for start, stop in self._bounds():
            if order is None:
                batch_inputs = inputs[start:stop]
                batch_targets = None if targets is None else targets[start:stop]
            else:
                indices = order[start:stop]
                batch_inputs = host.take(inputs, indices)
                batch_targets = None if targets is None else host.take(targets, indices)
            yield batch_inputs, batch_targets

    def _streamed_batches(self, order: Any) -> Iterator[tuple[Tensor, Tensor | None]]:
        # the backend's uploader: on a GPU, pinned buffers and a copy stream, so sending the next
        # batch neither blocks the host nor waits for the compute on this one
        if self._uploader is None:
            self._uploader = self.backend.uploader()
        send = self._uploader.send
        uploads = (
            (
                send(batch_inputs, self._input_dtype),
                None if batch_targets is None else send(batch_targets, self._target_dtype),
            )
            for batch_inputs, batch_targets in self._host_batches(order)
        )
        pending = next(uploads, None)
        while pending is not None:
            # copy the next batch before handing this one out, so its host gather and transfer
            # overlap the device work queued for this one
            following = next(uploads, None)
            # an upload may be the host array itself (numpy), so it is owned only where the
            # uploader says every array it returns is new
            yield self._finish(*pending, owned=self._uploader.owns_result)
            pending = following

    def _finish(self, inputs: Any, targets: Any, owned: bool = False, scope: Any = None, take: Any = None,
                indices: Any = None) -> tuple[Tensor, Tensor | None]:
        """Device batch in stored dtypes -> (float32 inputs, scaled; targets); with ``indices``,
        the batch is first gathered from the resident dataset by ``take``.

        Unless the arrays are ``owned`` (new arrays a gather made), they are copied, so a batch
        never aliases the dataset (slices are views, and on numpy the resident dataset is the
        caller's own array)."""
        xp = self.backend.xp
        # the loader's device, whichever is current (CuPy); ``scope`` where the caller has it
        with device_scope(inputs) if scope is None else scope:
            if indices is not None:
                inputs = take(inputs, indices)
                targets = None if targets is None else take(targets, indices)
                owned = True
            inputs = xp.astype(inputs, xp.float32, copy=not owned)
            if self.scale is not None:
                inputs *= self.scale  # in place: inputs is this batch's own array
            if targets is not None and not owned:
                targets = xp.astype(targets, targets.dtype)
        return Tensor(inputs), None if targets is None else Tensor(targets)

    # -- resuming ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What a resumed run needs to see the same future shuffles: the generator's state, the
        epoch count, the seed and the dataset length (checked on load)."""
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "generator": self._generator.get_state(),
            "num_examples": self.num_examples,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict()`` returned; the next epoch continues that run's order."""
        if not isinstance(state, dict) or any(key not in state for key in _STATE_KEYS):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"not a DataLoader state: expected a dict with keys {list(_STATE_KEYS)}; got {got}"
            )
        if state["num_examples"] != self.num_examples:
            raise ValueError(
                f"the state is from a dataset of {state['num_examples']} examples; this loader's "
                f"has {self.num_examples}; expected the same dataset"
            )
        epoch = state["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"the state's epoch must be a non-negative int; got {epoch!r}")
        try:
            self._generator.set_state(state["generator"])
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"the state's generator entry is not a generator state ({exc}); expected what "
                "DataLoader.state_dict() returned"
            ) from exc
        self.seed = state["seed"]
        self.epoch = epoch

    def __repr__(self) -> str:
        placement = "resident" if self.resident else "streamed"
        shard = f", rank {self.rank} of {self.num_replicas}" if self.distributed else ""
        return (
            f"DataLoader({self.num_examples} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, {placement} on "
            f"{self.backend.describe()}{shard})"
        )
