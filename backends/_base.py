"""The surface every backend provides, and the parts they share."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import host


class BackendUnavailableError(RuntimeError):
    """The requested array library or device is not usable on this machine."""


class Backend:
    """One array library on one device.

    Attributes:
        name: the backend's name as given to ``gd.set_backend``.
        xp: the array-API namespace core code computes with.
        device: the device arrays are created on.
        sync_is_free: True where reading a value back to Python costs no device
            synchronisation (host memory), so cheap input validation may read values.
    """

    name: str = "?"
    sync_is_free: bool = True
    # name -> function; filled by each backend module with register_fast_path
    fast_paths: dict[str, Callable[..., Any]] = {}

    def __init__(self, xp: Any, device: Any):
        self.xp = xp
        self.device = device

    # -- availability -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when usable here, else a sentence saying why not and how to fix it."""
        return None

    @classmethod
    def is_available(cls) -> bool:
        return cls.unavailable_reason() is None

    @classmethod
    def devices(cls) -> list[str]:
        """Names of the devices this backend can use here."""
        return ["cpu"]

    # -- transfer ----------------------------------------------------------------------------
    def asarray(self, obj: Any, dtype: Any = None) -> Any:
        """Host data (NumPy array, Python scalars or sequences) -> an array on this device."""
        return self.xp.asarray(obj, dtype=dtype, device=self.device)

    def to_host(self, array: Any) -> np.ndarray:
        """An array of this backend -> a NumPy array in host memory (a copy where needed)."""
        return np.asarray(array)

    def synchronize(self) -> None:
        """Wait until queued device work has finished (no-op on the host)."""

    def memory_free(self) -> int | None:
        """Bytes free on the device, or None where the device is host memory."""
        return None

    # -- dtypes ------------------------------------------------------------------------------
    def supports_dtype(self, dtype_name: str) -> bool:
        return True

    # -- randomness --------------------------------------------------------------------------
    def generator(self, seed: int) -> "DeviceGenerator":
        """A seeded generator whose draws land on this device."""
        return HostDrawnGenerator(self, seed)

    # -- communication -----------------------------------------------------------------------
    def communicator(self, world: Any, engine: str) -> Any:
        """A ``comm.Communicator`` for this backend's arrays on this device over ``engine``:
        "local" (a world of one process) or "mpi" (through host copies; NumPy reduces in place,
        CuPy adds "nccl" and CUDA-aware MPI). ``world`` is what ``comm.open_world`` returned."""
        from . import comm

        if engine == "local":
            return comm.LocalCommunicator(self.xp)
        if engine == "mpi":
            from .mpi_comm import MPICommunicator

            return MPICommunicator(world, self.to_host, self.asarray, in_place=False)
        raise ValueError(f"the {self.name} backend has no {engine!r} communicator; expected 'mpi' "
                         "('nccl' needs the cupy backend: arrays on CUDA GPUs)")

    # -- fast paths --------------------------------------------------------------------------
    def fast_path(self, name: str) -> Callable[..., Any] | None:
        """The registered fast path ``name`` for this backend, or None (use the reference)."""
        return self.fast_paths.get(name)

    def describe(self) -> str:
        return f"{self.name} on {self.device}"

    def __repr__(self) -> str:
        return f"<gdnet backend {self.describe()}>"


def register_fast_path(registry: dict[str, Callable[..., Any]], name: str):
    """Decorator: put a function into a backend's fast-path registry under ``name``."""

    def put(fn: Callable[..., Any]) -> Callable[..., Any]:
        registry[name] = fn
        return fn

    return put


class DeviceGenerator:
    """Seeded draws that land on a backend's device. Shapes are tuples; dtypes are xp dtypes."""

    def normal(self, shape, dtype, mean: float = 0.0, std: float = 1.0): ...
    def uniform(self, shape, dtype, low: float = 0.0, high: float = 1.0): ...
    def bernoulli(self, p: float, shape, dtype): ...
    def permutation(self, n: int): ...


class HostDrawnGenerator(DeviceGenerator):
    """Draws on the host with NumPy's PCG64 and moves the result to the device.

    Used where the device is host memory (or simulated, as in array_api_strict), so the same
    seed gives the same numbers on every such backend.
    """

    def __init__(self, backend: Backend, seed: int):
        self._backend = backend
        self._host = host.HostGenerator(seed)

    def _send(self, values: np.ndarray, dtype):
        return self._backend.asarray(values, dtype=dtype)

    def normal(self, shape, dtype, mean=0.0, std=1.0):
        return self._send(self._host.normal(shape, mean, std), dtype)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        return self._send(self._host.uniform(shape, low, high), dtype)

    def bernoulli(self, p, shape, dtype):
        return self._send(self._host.bernoulli(p, shape), dtype)

    def permutation(self, n):
        return self._send(self._host.permutation(n), self._backend.xp.int64)

    def get_state(self) -> dict:
        return self._host.get_state()

    def set_state(self, state: dict) -> None:
        self._host.set_state(state)
