"""Array-library backends: the only code in gdnet that imports numpy, cupy, torch or array_api_strict.

Each backend module defines one ``Backend`` subclass (see ``_base``) that answers every question
about its library: namespace and device, host<->device transfer, whether reading values is free,
a seeded generator, synchronize, availability, package version, and a registry of optional fast
paths. ``REGISTRY`` below is the one list of backends: ``gd.set_backend``, ``"auto"``, the CLI's
``--backend`` choices, ``gdnet info`` and the test matrix all read it, and ``find`` answers "which
backend owns this array" by array type. Backend modules import their library lazily, so
``import gdnet`` imports neither cupy nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._base import Backend, BackendUnavailableError, DeviceGenerator, Uploader

# name -> module holding that backend's Backend subclass as BACKEND (imported on first use), or
# the class itself. Order matters twice: ``find`` asks the classes in this order, and the test
# matrix lists their rows in it.
REGISTRY: dict[str, str | type[Backend]] = {
    "numpy": "numpy_backend",
    "array_api_strict": "strict_backend",
    "torch": "torch_backend",
    "cupy": "cupy_backend",
}

# array type -> the Backend class that owns it (None: no backend does)
_OWNERS: dict[type, type[Backend] | None] = {}


def register(name: str, backend: str | type[Backend]) -> None:
    """Add a backend under ``name``: a Backend subclass, or the name of a module in this package
    that defines one as ``BACKEND``."""
    if name == "auto" or not name:
        raise ValueError(f"a backend cannot be called {name!r}")
    REGISTRY[name] = backend
    _OWNERS.clear()


def unregister(name: str) -> None:
    """Remove the backend ``name`` (KeyError where there is none)."""
    del REGISTRY[name]
    _OWNERS.clear()


def names() -> list[str]:
    """Every backend gdnet knows, available on this machine or not."""
    return list(REGISTRY)


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass called ``name``; ValueError listing the known names otherwise."""
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(REGISTRY)} or 'auto'")
    if isinstance(entry, str):
        entry = importlib.import_module(f".{entry}", __name__).BACKEND
    return entry


def classes() -> list[type[Backend]]:
    """The Backend class of every registered backend, in registry order."""
    return [backend_class(name) for name in REGISTRY]


def find(array_type: type) -> type[Backend] | None:
    """The Backend class whose library made arrays of ``array_type`` (None for anything else,
    such as Python numbers and lists). One dict lookup once a type has been seen."""
    try:
        return _OWNERS[array_type]
    except KeyError:
        pass
    owner = next((cls for cls in classes() if cls.owns(array_type)), None)
    if owner is not None:
        owner.load_fast_paths()
    _OWNERS[array_type] = owner
    return owner


def owner(array: Any) -> type[Backend]:
    """The Backend class of ``array``; TypeError naming its type where no backend owns it."""
    cls = find(type(array))
    if cls is None:
        raise TypeError(
            f"{type(array).__module__}.{type(array).__qualname__} is not an array of any gdnet backend "
            f"({', '.join(REGISTRY)}); expected a Tensor or an array of one of them"
        )
    return cls


def array_namespace(array: Any) -> Any:
    """The namespace gdnet computes with for ``array`` (its backend's; NumPy arrays get the numpy
    backend's, whose hot functions call NumPy directly)."""
    return owner(array).namespace(array)


def auto() -> tuple[str, Any]:
    """(name, device) that ``set_backend("auto")`` picks: the backends by ``auto_rank``, the
    first whose ``auto_device()`` answers (cupy, then torch on CUDA or MPS, then numpy)."""
    ranked = sorted((cls.auto_rank, name) for name, cls in zip(REGISTRY, classes()) if cls.auto_rank is not None)
    for _, name in ranked:
        device = backend_class(name).auto_device()
        if device is not None:
            return name, device
    return "numpy", "cpu"


__all__ = [
    "REGISTRY", "Backend", "BackendUnavailableError",
    "DeviceGenerator", "Uploader", "array_namespace", "auto", "backend_class", "classes",
    "find", "names", "owner", "register", "unregister",
]
