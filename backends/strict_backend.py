"""array_api_strict: the standard and nothing more, on simulated devices.

Its devices make the test suite catch what CuPy would hit without a GPU: ``device1`` refuses
to mix with other devices and to convert to NumPy silently; ``no_float64`` has no float64.
"""

from __future__ import annotations

import numpy as np

from ._base import Backend, BackendUnavailableError

FAST_PATHS: dict = {}


def _strict():
    try:
        import array_api_strict
    except ImportError as exc:  # pragma: no cover - the tests extra installs it
        raise BackendUnavailableError(
            "array_api_strict is not installed; install it with `pip install array-api-strict`"
        ) from exc
    return array_api_strict


class StrictBackend(Backend):
    name = "array_api_strict"
    sync_is_free = True
    fast_paths = FAST_PATHS

    def __init__(self, device: str | None = None):
        strict = _strict()
        known = [d for d in self.devices()]
        name = device or "CPU_DEVICE"
        if name not in known:
            raise ValueError(f"unknown array_api_strict device {name!r}; expected one of {known}")
        super().__init__(strict, strict.Device(name))
        self._cpu = strict.Device("CPU_DEVICE")

    @classmethod
    def unavailable_reason(cls):
        try:
            _strict()
        except BackendUnavailableError as exc:
            return str(exc)
        return None

    @classmethod
    def devices(cls) -> list[str]:
        strict = _strict()
        return [str(d).split("'")[1] for d in strict.__array_namespace_info__().devices()]

    def asarray(self, obj, dtype=None):
        if isinstance(obj, np.ndarray) and dtype is None:
            dtype = getattr(self.xp, obj.dtype.name)
        return self.xp.asarray(obj, dtype=dtype, device=self.device)

    def to_host(self, array) -> np.ndarray:
        # the explicit hop to CPU_DEVICE is the transfer; np.asarray on device1 refuses
        return np.asarray(array.to_device(self._cpu))

    def supports_dtype(self, dtype_name: str) -> bool:
        info = self.xp.__array_namespace_info__()
        return dtype_name in info.dtypes(device=self.device)

    def describe(self) -> str:
        return f"array_api_strict on {str(self.device).split(chr(39))[1]}"


BACKEND = StrictBackend
