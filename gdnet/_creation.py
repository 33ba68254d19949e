"""Making tensors on the active backend."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from . import backends
from ._backend import default_float, device_rng, get_backend
from .autograd import Tensor, check_grad_dtype, namespace_of, resolve_dtype
from .backends import Backend, host


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` (an int or a sequence of them) as a tuple of non-negative Python ints."""
    dims = (shape,) if isinstance(shape, numbers.Number) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"{name}: shape must be a sequence of non-negative integers; got {shape!r}") from None
    if any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0 for d in dims):
        raise ValueError(f"{name}: shape must be non-negative integers; got {dims}")
    return tuple(int(d) for d in dims)


def _active(dtype: Any) -> tuple[Backend, Any]:
    """The active backend, and ``dtype`` (an xp dtype, its name, or None for float32) as its dtype."""
    backend = get_backend()
    return backend, resolve_dtype(backend.xp, dtype) or default_float(backend)


def filled(shape: tuple[int, ...], value: float, dtype: Any = None) -> Any:
    """An array of ``shape`` holding ``value`` on the active backend's device, in ``dtype`` (an
    xp dtype or its name; default float32): how core code makes a new array from nothing
    (parameters before their initialisation, buffers, zeros for an empty sum)."""
    backend, dtype = _active(dtype)
    xp, device = backend.xp, backend.device
    # zeros and ones take every dtype (a Python float fill does not suit an integer or bool one)
    if value == 0:
        return xp.zeros(shape, dtype=dtype, device=device)
    if value == 1:
        return xp.ones(shape, dtype=dtype, device=device)
    return xp.full(shape, value, dtype=dtype, device=device)


def _made(name: str, array: Any, requires_grad: bool) -> Tensor:
    if requires_grad:
        check_grad_dtype(name, array)
    return Tensor(array, requires_grad)


def _source(value: Any, xp: Any, device: Any) -> Any:
    """What ``xp.asarray(..., device=device)`` is given for ``value``: a Tensor's array, an array
    of a backend as it is where it lives in ``xp`` on ``device`` (else a host copy of it: the one
    way between libraries and devices), and Python numbers or sequences as a host array."""
    if isinstance(value, Tensor):
        value = value.data
    if host.is_host_array(value):
        return value
    if backends.find(type(value)) is not None:
        return value if namespace_of(value) is xp and value.device == device else host.to_numpy(value)
    return host.asarray(value)


def as_array_like(value: Any, like: Any, dtype: Any = None) -> Any:
    """``value`` (host array, sequence, Tensor, array of any backend) as an array on ``like``'s
    namespace and device, in ``dtype`` (default: ``like``'s dtype). Always a fresh copy, so
    in-place updates never reach the caller's data."""
    xp = namespace_of(like)
    dtype = like.dtype if dtype is None else dtype
    return xp.asarray(_source(value, xp, like.device), dtype=dtype, device=like.device, copy=True)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor on the active backend from host data (NumPy array, Python numbers or lists,
    or an array of another backend, which is copied through the host).

    Python floats give float32; arrays keep their dtype unless ``dtype`` is given. The data is
    always copied.

    Raises:
        TypeError: data that is not numbers or booleans (strings, objects), or
            ``requires_grad=True`` with a dtype that is not floating.
    """
    backend = get_backend()
    xp = backend.xp
    from_python = not isinstance(data, Tensor) and backends.find(type(data)) is None  # numbers, sequences
    data = _source(data, xp, backend.device)
    if from_python and dtype is None and host.dtype_name(data) == "float64":
        data = host.astype(data, "float32")  # Python floats give float32, PyTorch's default dtype
    if host.is_host_array(data) and host.dtype_kind(data) not in "biufc":
        first = host.first_item(data)
        hint = "; to join Tensors, use gd.stack(tensors)" if isinstance(first, Tensor) else ""
        raise TypeError(
            f"gd.tensor: data must be numbers or booleans; got an array of dtype {host.dtype_name(data)} "
            f"(for example {first!r}){hint}"
        )
    array = backend.asarray(data, dtype=resolve_dtype(xp, dtype))
    if backend.sync_is_free or array is data:
        # asarray may share the caller's memory (host backends, or an array already on this
        # device); a new tensor owns its data, so in-place updates never reach the caller
        array = xp.asarray(array, copy=True)
    return _made("gd.tensor", array, requires_grad)


def zeros(shape: Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``shape`` on the active backend (float32 unless ``dtype``)."""
    return _made("gd.zeros", filled(_shape("gd.zeros", shape), 0, dtype), requires_grad)


def ones(shape: Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``shape`` on the active backend (float32 unless ``dtype``)."""
    return _made("gd.ones", filled(_shape("gd.ones", shape), 1, dtype), requires_grad)


def randn(*shape: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard-normal draws of ``shape`` from the seeded generator, on the active backend."""
    backend, dtype = _active(dtype)
    shape = _shape("gd.randn", shape[0] if len(shape) == 1 else shape)
    return _made("gd.randn", device_rng(backend).normal(shape, dtype), requires_grad)


def rand(*shape: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` from the seeded generator, on the active backend."""
    backend, dtype = _active(dtype)
    shape = _shape("gd.rand", shape[0] if len(shape) == 1 else shape)
    return _made("gd.rand", device_rng(backend).uniform(shape, dtype), requires_grad)
