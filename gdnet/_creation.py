"""Making tensors on the active backend."""

from __future__ import annotations

from typing import Any, Sequence

from . import backends
from ._backend import default_float, device_rng, get_backend
from .autograd import Tensor, namespace_of, resolve_dtype
from .backends import host


def as_array_like(value: Any, like: Any, dtype: Any = None) -> Any:
    """``value`` (host array, sequence, Tensor, array of any backend) as an array on ``like``'s
    namespace and device, in ``dtype`` (default: ``like``'s dtype). Always a fresh copy, so
    in-place updates never reach the caller's data."""
    if isinstance(value, Tensor):
        value = value.data
    xp = namespace_of(like)
    dtype = like.dtype if dtype is None else dtype
    if backends.find(type(value)) is not None:
        if not (namespace_of(value) is xp and value.device == like.device):
            value = host.to_numpy(value)
    elif not host.is_host_array(value):
        value = host.asarray(value)
    return xp.asarray(value, dtype=dtype, device=like.device, copy=True)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor on the active backend from host data (NumPy array, Python numbers or lists,
    or an array of another backend, which is copied through the host).

    Python floats give float32; arrays keep their dtype unless ``dtype`` is given. The data is
    always copied.
    """
    backend = get_backend()
    xp = backend.xp
    if isinstance(data, Tensor):
        data = data.data
    if not host.is_host_array(data):
        if backends.find(type(data)) is not None:  # an array of some backend
            if not (namespace_of(data) is xp and data.device == backend.device):
                data = host.to_numpy(data)
        else:  # Python numbers and (nested) sequences
            data = host.asarray(data)
            if dtype is None and host.dtype_name(data) == "float64":
                data = data.astype("float32")
    array = backend.asarray(data, dtype=resolve_dtype(xp, dtype))
    if backend.sync_is_free or array is data:
        # asarray may share the caller's memory (host backends, or an array already on this
        # device); a new tensor owns its data, so in-place updates never reach the caller
        array = xp.asarray(array, copy=True)
    return Tensor(array, requires_grad=requires_grad)


def zeros(shape: Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``shape`` on the active backend (float32 unless ``dtype``)."""
    backend = get_backend()
    dtype = resolve_dtype(backend.xp, dtype) or default_float(backend)
    return Tensor(backend.xp.zeros(tuple(shape), dtype=dtype, device=backend.device), requires_grad)


def ones(shape: Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``shape`` on the active backend (float32 unless ``dtype``)."""
    backend = get_backend()
    dtype = resolve_dtype(backend.xp, dtype) or default_float(backend)
    return Tensor(backend.xp.ones(tuple(shape), dtype=dtype, device=backend.device), requires_grad)


def randn(*shape: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard-normal draws of ``shape`` from the seeded generator, on the active backend."""
    backend = get_backend()
    dtype = resolve_dtype(backend.xp, dtype) or default_float(backend)
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Tensor(device_rng(backend).normal(shape, dtype), requires_grad)


def rand(*shape: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` from the seeded generator, on the active backend."""
    backend = get_backend()
    dtype = resolve_dtype(backend.xp, dtype) or default_float(backend)
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Tensor(device_rng(backend).uniform(shape, dtype), requires_grad)
