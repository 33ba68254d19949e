"""Streamed batches to a GPU without blocking: pinned host buffers and a copy stream.

A copy from ordinary (pageable) host memory blocks the host until the GPU has taken the data,
so the DataLoader's prefetch of the next batch could not overlap the compute on this one.
``StagedUploader`` writes each host batch into one of a few page-locked buffers, starts its
copy on a side stream, and makes the compute stream wait for that copy (on the device, not the
host). A buffer is reused only once the copy that read it has finished.

The ring of buffers and the ordering live here, tested on the CPU with stand-in copies; the
library-specific part is a small ``Copier`` per library (``CupyCopier``, ``TorchCopier``), which
only a GPU runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Backend, Uploader


class Copier:
    """What a library provides to stage copies: page-locked buffers and asynchronous copies."""

    def pinned(self, nbytes: int) -> Any:
        """A page-locked host buffer of at least ``nbytes`` bytes (``host_view`` reads it)."""
        raise NotImplementedError

    def host_view(self, buffer: Any, nbytes: int) -> np.ndarray:
        """The first ``nbytes`` of ``buffer`` as a writable uint8 NumPy array."""
        raise NotImplementedError

    def copy(self, buffer: Any, staged: np.ndarray) -> tuple[Any, Any]:
        """Start copying ``staged`` (a view into ``buffer``) to the device on the copy stream,
        after the work already queued on the compute stream, and make the compute stream wait
        for it. Returns (the device array, an event that completes with the copy)."""
        raise NotImplementedError

    def wait(self, event: Any) -> None:
        """Block the host until ``event`` has completed."""
        raise NotImplementedError


class StagedUploader(Uploader):
    """Sends host batches through a ring of ``depth`` pinned buffers (see the module doc).

    ``depth`` 4: inputs and targets of the batch prefetched and of the one being written. A
    buffer's next user waits for the copy that last read it, which the compute of the step
    before the current one has already waited for, so the host seldom waits and never for long.
    """

    def __init__(self, backend: Backend, copier: Copier, depth: int = 4):
        super().__init__(backend)
        self.copier = copier
        self._buffers: list[Any] = [None] * depth
        self._sizes = [0] * depth
        self._events: list[Any] = [None] * depth
        self._next = 0

    owns_result = True  # every batch is a new device array

    def send(self, array: np.ndarray, dtype: str) -> Any:
        slot = self._next
        self._next = (slot + 1) % len(self._buffers)
        if self._events[slot] is not None:
            self.copier.wait(self._events[slot])  # its last copy has read the buffer
            self._events[slot] = None
        target = np.dtype(dtype)
        nbytes = int(np.prod(array.shape, dtype=np.int64)) * target.itemsize
        if self._sizes[slot] < nbytes:
            self._buffers[slot] = self.copier.pinned(nbytes)
            self._sizes[slot] = nbytes
        buffer = self._buffers[slot]
        staged = self.copier.host_view(buffer, nbytes).view(target).reshape(array.shape)
        np.copyto(staged, array, casting="unsafe")  # the conversion writes straight into pinned memory
        device_array, event = self.copier.copy(buffer, staged)
        self._events[slot] = event
        return device_array


class CupyCopier(Copier):
    """CuPy: pinned memory from its pool, copies on a non-blocking stream of the device."""

    def __init__(self, backend: Backend):
        import cupy

        self._cupy, self._device = cupy, backend.device
        with self._device:
            self._stream = cupy.cuda.Stream(non_blocking=True)

    def pinned(self, nbytes):
        return self._cupy.cuda.alloc_pinned_memory(nbytes)

    def host_view(self, buffer, nbytes):
        return np.frombuffer(buffer, dtype=np.uint8, count=nbytes)

    def copy(self, buffer, staged):
        cupy = self._cupy
        with self._device:
            compute = cupy.cuda.get_current_stream()
            # allocated in the compute stream's order, so memory it frees is reused only after
            # the work queued on it; the copy starts after that work too
            out = cupy.empty(staged.shape, dtype=staged.dtype)
            self._stream.wait_event(compute.record())
            out.set(staged, stream=self._stream)
            done = self._stream.record()
            compute.wait_event(done)
        return out, done

    def wait(self, event):
        event.synchronize()


class TorchCopier(Copier):
    """torch on CUDA: pinned tensors, copies on a side stream of the device."""

    def __init__(self, backend: Backend):
        import torch

        self._torch, self._device = torch, backend.device
        self._stream = torch.cuda.Stream(device=self._device)

    def pinned(self, nbytes):
        return self._torch.empty(nbytes, dtype=self._torch.uint8, pin_memory=True)

    def host_view(self, buffer, nbytes):
        return buffer[:nbytes].numpy()

    def copy(self, buffer, staged):
        torch = self._torch
        # the pinned tensor's own bytes (not a tensor made from the NumPy view), so torch knows
        # the copy may run asynchronously
        dtype = torch.from_numpy(np.empty(0, dtype=staged.dtype)).dtype
        source = buffer[: staged.nbytes].view(dtype).reshape(staged.shape)
        compute = torch.cuda.current_stream(self._device)
        out = torch.empty(staged.shape, dtype=source.dtype, device=self._device)  # compute-stream memory
        self._stream.wait_stream(compute)
        with torch.cuda.stream(self._stream):
            out.copy_(source, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self._stream)
        compute.wait_event(done)
        return out, done

    def wait(self, event):
        event.synchronize()


def cupy_uploader(backend: Backend) -> StagedUploader:
    return StagedUploader(backend, CupyCopier(backend))


def torch_uploader(backend: Backend) -> StagedUploader:
    return StagedUploader(backend, TorchCopier(backend))
