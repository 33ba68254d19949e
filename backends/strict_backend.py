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
    array_class = "array_api_strict:_array_object.Array"
    distributions = ("array-api-strict",)
    test_rows = (("strict-cpu", "CPU_DEVICE"), ("strict-device1", "device1"), ("strict-no_float64", "no_float64"))
    sync_is_free = True
    fast_paths = FAST_PATHS

    def __init__(self, device: str | None = None):
        strict = _strict()
        known = [d for d in self.devices()]
        name = device or "CPU_DEVICE"
        if name not in known:
            raise ValueError(f"unknown array_api_strict device {name!r}; expected one of {known}")
        super().__init__(strict, strict.Device(name))

    @classmethod
    def unavailable_reason(cls, device=None):
        try:
            _strict()
        except BackendUnavailableError as exc:
            return str(exc)
        return None

    @classmethod
    def devices(cls) -> list[str]:
        strict = _strict()
        return [_device_name(d) for d in strict.__array_namespace_info__().devices()]

    @classmethod
    def namespace(cls, array):
        return _strict()

    @classmethod
    def to_host(cls, array) -> np.ndarray:
        # the explicit hop to CPU_DEVICE is the transfer (device1 refuses to convert without
        # it), then DLPack hands NumPy the buffer, which is copied so the caller owns it
        strict = _strict()
        on_cpu = array.to_device(strict.Device("CPU_DEVICE"))
        return np.array(np.from_dlpack(on_cpu), copy=True)

    @classmethod
    def device_name(cls, array) -> str:
        return _device_name(array.device)

    def asarray(self, obj, dtype=None):
        if isinstance(obj, np.ndarray) and dtype is None:
            dtype = getattr(self.xp, obj.dtype.name)
        return self.xp.asarray(obj, dtype=dtype, device=self.device)

    def supports_dtype(self, dtype_name: str) -> bool:
        info = self.xp.__array_namespace_info__()
        return dtype_name in info.dtypes(device=self.device)

    def device_label(self) -> str:
        return _device_name(self.device)


def _device_name(device) -> str:
    """'device1' from array_api_strict's Device('device1')."""
    return str(device).split("'")[1]


BACKEND = StrictBackend
