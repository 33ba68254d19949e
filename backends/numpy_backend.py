"""NumPy on the CPU, through array-api-compat's NumPy namespace."""

from __future__ import annotations

import array_api_compat.numpy as xp_numpy
import numpy as np

from ._base import Backend, register_fast_path  # noqa: F401  (register_fast_path: see CONTRIBUTING)

FAST_PATHS: dict = {}


class NumpyBackend(Backend):
    name = "numpy"
    sync_is_free = True
    fast_paths = FAST_PATHS

    def __init__(self, device: str | None = None):
        if device not in (None, "cpu"):
            raise ValueError(f"numpy backend has one device, 'cpu'; got {device!r}")
        super().__init__(xp_numpy, "cpu")

    def asarray(self, obj, dtype=None):
        return np.asarray(obj, dtype=dtype)

    def to_host(self, array) -> np.ndarray:
        return np.asarray(array)


BACKEND = NumpyBackend
