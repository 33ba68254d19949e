"""Array-library backends: the only code in gdnet that imports numpy, cupy or array_api_strict.

Each backend module defines one ``Backend`` subclass with the same surface (see ``_base``):
namespace and device, host<->device transfer, a seeded generator, synchronize, availability,
and a registry of optional fast paths. Modules are imported lazily, so ``import gdnet`` never
imports cupy.
"""

from __future__ import annotations

import importlib

import numpy as np  # the host library, imported by every backend anyway (never cupy here)

from ._base import Backend, BackendUnavailableError

# name -> module holding that backend's Backend subclass (imported on first use)
_MODULES = {
    "numpy": "numpy_backend",
    "array_api_strict": "strict_backend",
    "cupy": "cupy_backend",
}


def names() -> list[str]:
    """Every backend gdnet knows, available on this machine or not."""
    return list(_MODULES)


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass called ``name``; ValueError listing the known names otherwise."""
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(_MODULES)} or 'auto'")
    module = importlib.import_module(f".{_MODULES[name]}", __name__)
    return module.BACKEND


__all__ = ["Backend", "BackendUnavailableError", "array_namespace", "backend_class", "has_one_device", "names"]


def has_one_device(array_type: type) -> bool:
    """True for array types whose arrays all live on one device (NumPy's ndarray), so two of
    them never need their devices compared."""
    return array_type.__module__ == "numpy" and array_type.__name__ == "ndarray"


def array_namespace(array):
    """The namespace gdnet computes with for ``array``: array-api-compat's, except that NumPy
    arrays get the numpy backend's (the same functions, some bound more directly)."""
    import array_api_compat

    xp = array_api_compat.array_namespace(array)
    if xp.__name__ == "array_api_compat.numpy":
        return importlib.import_module(".numpy_backend", __name__).NAMESPACE
    return xp


def sync_is_free(array) -> bool:
    """True where reading ``array``'s values in Python needs no device synchronisation."""
    module = type(array).__module__
    return not module.startswith("cupy")


def integer_range(array) -> tuple[int, int] | None:
    """(min, max) of an integer array, or None where reading values would synchronise a device.

    Validation of labels and indices calls this every step, so NumPy arrays go straight to the
    ufuncs' reductions (the function and method spellings add Python-level wrappers, which cost
    more than the work on small arrays).
    """
    module = type(array).__module__
    if module.startswith("cupy"):
        return None
    if module.startswith("numpy"):
        return int(np.minimum.reduce(array, axis=None)), int(np.maximum.reduce(array, axis=None))
    import array_api_compat

    xp = array_api_compat.array_namespace(array)
    return int(xp.min(array)), int(xp.max(array))
