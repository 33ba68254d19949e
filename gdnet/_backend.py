"""The active backend: which array library and device new arrays are made on.

``set_backend("numpy" | "cupy" | "torch" | "array_api_strict" | "auto", device=None)`` picks it
(the names are those of ``gdnet.backends.REGISTRY``); ``GDNET_BACKEND`` (optionally
``name:device``) sets the starting choice; ``use_backend`` is the same as a context manager.
"auto" is cupy when a CUDA device answers, then torch on CUDA or MPS, else numpy.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from typing import Any, Iterator

from . import backends as _backends
from .backends import Backend, BackendUnavailableError
from .backends.host import HostGenerator

_ACTIVE: Backend | None = None
_SEED = 0
# host generator for weight initialisation and shuffles: the same numbers on every backend
_HOST_RNG = HostGenerator(_SEED)
# device generators (dropout masks and other per-step draws), one per backend instance
_DEVICE_RNGS: dict[tuple[str, str], Any] = {}


def available_backends() -> list[str]:
    """Names of the backends that work on this machine (cupy only where a CUDA device answers)."""
    return [name for name in _backends.names() if _backends.backend_class(name).is_available()]


def _resolve(name: str, device: Any) -> Backend:
    if name == "auto":
        name, found = _backends.auto()
        device = found if device is None else device
    if name not in _backends.names():
        raise ValueError(
            f"unknown backend {name!r}; expected 'auto' or one of: {', '.join(_backends.names())} "
            f"(available here: {', '.join(available_backends())})"
        )
    cls = _backends.backend_class(name)
    reason = cls.unavailable_reason(device)
    if reason:
        raise BackendUnavailableError(f"backend {name!r} cannot be used: {reason}")
    return cls(device)


def set_backend(name: str = "auto", device: Any = None) -> Backend:
    """Make ``name`` (on ``device``) the backend new tensors, parameters and batches use.

    Args:
        name: "numpy", "cupy", "torch", "array_api_strict" or "auto" (also "name:device").
        device: a device of that backend ("cpu"; cupy "cuda:1"; torch "cpu", "cuda", "cuda:1",
            "mps", "meta"; array_api_strict "device1", "no_float64").
    Returns:
        the Backend now active.
    Raises:
        TypeError: ``name`` is not a string. ValueError: an unknown name or device.
        BackendUnavailableError: the backend's library or device is missing here.
    """
    global _ACTIVE
    if not isinstance(name, str):
        raise TypeError(
            f"backend name must be a string: 'auto' or one of {', '.join(_backends.names())}; got {name!r}"
        )
    if ":" in name and device is None:
        name, device = name.split(":", 1)
    _ACTIVE = _resolve(name, device)
    _ACTIVE.activate()
    return _ACTIVE


def get_backend() -> Backend:
    """The active Backend (from GDNET_BACKEND, else numpy, on first use)."""
    if _ACTIVE is None:
        _set_from_environment("numpy")
    return _ACTIVE  # type: ignore[return-value]


ENVIRONMENT_VARIABLE = "GDNET_BACKEND"


def _set_from_environment(default: str, device: Any = None) -> Backend:
    """set_backend of GDNET_BACKEND's choice (``name`` or ``name:device``), or of ``default``
    where it is unset or empty; an unknown or unusable choice is an error naming the variable."""
    choice = os.environ.get(ENVIRONMENT_VARIABLE)
    if not choice:
        return set_backend(default, device)
    try:
        return set_backend(choice, device)
    except (ValueError, BackendUnavailableError) as exc:
        raise type(exc)(f"{ENVIRONMENT_VARIABLE}={choice!r}: {exc}") from exc


@contextlib.contextmanager
def use_backend_from_environment(default: str = "auto", device: Any = None) -> Iterator[Backend]:
    """``use_backend`` of GDNET_BACKEND's choice, else of ``default`` (what the ``gdnet`` command
    does without --backend); a bad choice is an error naming the variable."""
    global _ACTIVE
    previous = _ACTIVE
    try:
        yield _set_from_environment(default, device)
    finally:
        _ACTIVE = previous


@contextlib.contextmanager
def use_backend(name: str, device: Any = None) -> Iterator[Backend]:
    """``with gd.use_backend("array_api_strict", "device1"):`` runs its body on that backend."""
    global _ACTIVE
    previous = _ACTIVE
    try:
        yield set_backend(name, device)
    finally:
        _ACTIVE = previous
        if previous is not None:
            previous.activate()


def manual_seed(seed: int) -> None:
    """Seed every generator gdnet draws from: initial weights, shuffles and per-step draws.

    Raises:
        TypeError: ``seed`` is not an integer. ValueError: it is negative.
    """
    global _HOST_RNG, _SEED
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"manual_seed: seed must be a non-negative integer; got {seed!r}")
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer; got {seed}")
    _SEED = int(seed)
    _HOST_RNG = HostGenerator(_SEED)
    _DEVICE_RNGS.clear()


def host_rng() -> HostGenerator:
    """The seeded host generator (weight init, data shuffles)."""
    return _HOST_RNG


def backend_for(array: Any) -> Backend:
    """A Backend of ``array``'s library on ``array``'s device: the active one where it matches."""
    owner = _backends.owner(array)
    device = owner.device_name(array)
    active = get_backend()
    if type(active) is owner and active.device_label() == device:
        return active
    key = (owner.name, device)
    backend = _INSTANCES.get(key)
    if backend is None:
        backend = _INSTANCES[key] = owner(device)
    return backend


_INSTANCES: dict[tuple[str, str], Backend] = {}


def device_rng(backend: Backend | None = None):
    """The seeded generator whose draws land on ``backend``'s device (default: active)."""
    backend = backend or get_backend()
    key = (backend.name, backend.device_label())
    if key not in _DEVICE_RNGS:
        _DEVICE_RNGS[key] = backend.generator(_SEED)
    return _DEVICE_RNGS[key]


def default_float(backend: Backend | None = None):
    """float32, the dtype every parameter and batch gets unless another is asked for."""
    return (backend or get_backend()).xp.float32
