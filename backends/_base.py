"""The surface every backend provides, and the parts they share."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

import numpy as np

from ._errors import BackendUnavailableError

__all__ = ["Backend", "BackendUnavailableError", "DeviceGenerator", "HostGenerator", "Uploader", "register_fast_path"]


class Backend:
    """One array library on one device, and every fact gdnet needs about that library's arrays.

    Instance attributes (this library on this device):
        name: the backend's name as given to ``gd.set_backend``.
        xp: the array-API namespace core code computes with.
        device: the device arrays are created on (as the arrays' own ``.device`` spells it).
        sync_is_free: True where reading a value back to Python costs no device
            synchronisation (host memory), so cheap input validation may read values.
        holds_values: False where arrays have shapes but no values (torch's ``meta`` device):
            nothing may be read, which the tests use to prove a training step reads nothing.

    Class-level answers, about any array of this library (core finds the class of an array with
    ``gdnet.backends.find``): ``owns``, ``namespace``, ``to_host``, ``reads_are_free``,
    ``value_range``, ``has_one_device``, ``device_name``, ``device_scope``, ``version``.

    Class attributes:
        array_class: "module:Class" of the library's array type (its subclasses count too).
        distributions: the package names whose installed version ``gdnet info`` prints (the
            first one installed counts).
        auto_rank: order in which ``set_backend("auto")`` asks ``auto_device`` (lowest
            first); None never picks this backend.
        test_rows: (test id, device) rows this backend adds to the test suite's matrix.
        fast_paths: name -> implementation; every subclass gets its own dict (see
            ``gdnet.fast_paths`` for the names and where each reference lives).
        kernels: the module of this package holding more fast paths in its own ``FAST_PATHS``
            dict, where importing them imports the library (``"torch_kernels"``); None if none.
    """

    name: str = "?"
    array_class: str | None = None
    distributions: tuple[str, ...] = ()
    auto_rank: int | None = None
    test_rows: tuple[tuple[str, Any], ...] = ()
    sync_is_free: bool = True
    holds_values: bool = True
    fast_paths: dict[str, Callable[..., Any]] = {}
    kernels: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fast_paths" not in cls.__dict__:  # never share a parent's registry by accident
            cls.fast_paths = {}

    def __init__(self, xp: Any, device: Any):
        self.xp = xp
        self.device = device

    # -- availability -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls, device: Any = None) -> str | None:
        """None when usable here (on ``device``, when given), else a sentence saying why not and
        how to fix it."""
        return None

    @classmethod
    def is_available(cls) -> bool:
        return cls.unavailable_reason() is None

    @classmethod
    def devices(cls) -> list[str]:
        """Names of the devices this backend can use here."""
        return ["cpu"]

    @classmethod
    def device_holds_values(cls, device: Any) -> bool:
        """False for a device whose arrays have shapes but no values (torch's meta)."""
        return True

    @classmethod
    def auto_device(cls) -> Any:
        """The device ``set_backend("auto")`` would use this backend on, or None to pass."""
        return None

    @classmethod
    def version(cls) -> str | None:
        """The installed version of this backend's library, or None where it is not installed."""
        from importlib import metadata

        for distribution in cls.distributions:
            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
        return None

    # -- the arrays of this library ----------------------------------------------------------
    @classmethod
    def owns(cls, array_type: type) -> bool:
        """Whether arrays of ``array_type`` belong to this library: subclasses of the class that
        ``array_class`` names. Never imports the library (an array of it exists only once the
        library is imported), as array-api-compat's ``is_cupy_array`` does."""
        if cls.array_class is None:
            return False
        module_name, _, attribute = cls.array_class.partition(":")
        module = sys.modules.get(module_name)
        if module is None:
            return False
        kind = module
        for part in attribute.split("."):
            kind = getattr(kind, part)
        return issubclass(array_type, kind)

    @classmethod
    def namespace(cls, array: Any) -> Any:
        """The namespace core code computes with for ``array``."""
        import array_api_compat

        return array_api_compat.array_namespace(array)

    @classmethod
    def has_one_device(cls, array_type: type) -> bool:
        """True where every array of ``array_type`` lives on one device (NumPy's), so two of
        them never need their devices compared."""
        return False

    @classmethod
    def to_host(cls, array: Any) -> np.ndarray:
        """An array of this library -> a NumPy array in host memory that the caller owns (a
        copy): the one explicit device->host transfer."""
        return np.array(array, copy=True)

    @classmethod
    def reads_are_free(cls, array: Any) -> bool:
        """Whether reading ``array``'s values into Python costs no device synchronisation."""
        return cls.sync_is_free

    @classmethod
    def value_range(cls, array: Any) -> tuple[Any, Any] | None:
        """(min, max) of a non-empty array as Python numbers (ints, exact, for integer dtypes;
        floats otherwise) where reading is free (cheap input checks, such as labels in range,
        call it every step); None where it would synchronise a device or the array holds no
        values. ``host.value_range`` gives the same answer for a host array, always."""
        if not cls.reads_are_free(array):
            return None
        xp = cls.namespace(array)
        low, high = xp.min(array), xp.max(array)
        kind = int if xp.isdtype(array.dtype, "integral") else float
        return kind(low), kind(high)

    @classmethod
    def device_name(cls, array: Any) -> str:
        """``array``'s device as this backend's constructor takes it."""
        return "cpu"

    @classmethod
    def device_scope(cls, array: Any) -> Any:
        """A context manager that makes ``array``'s device current, for libraries whose
        operations run on a current device (CuPy); None where there is no such state."""
        return None

    @classmethod
    def load_fast_paths(cls) -> None:
        """Add the fast paths of the ``kernels`` module to ``fast_paths``, once (called when the
        library's first array is met; later calls change nothing, so entries removed or
        replaced since stay so)."""
        if cls.kernels is None or cls.__dict__.get("_kernels_loaded"):
            return
        cls.fast_paths.update(importlib.import_module(f".{cls.kernels}", __package__).FAST_PATHS)
        cls._kernels_loaded = True

    # -- transfer ----------------------------------------------------------------------------
    def asarray(self, obj: Any, dtype: Any = None) -> Any:
        """Host data (NumPy array, Python scalars or sequences) -> an array on this device."""
        return self.xp.asarray(obj, dtype=dtype, device=self.device)

    def uploader(self) -> "Uploader":
        """What the DataLoader's streamed batches go through to reach this device."""
        return Uploader(self)

    def synchronize(self) -> None:
        """Wait until queued device work has finished (no-op on the host)."""

    def memory_free(self) -> int | None:
        """Bytes free on the device, or None where the device is host memory."""
        return None

    def activate(self) -> None:
        """Called when this backend becomes the active one (CuPy makes its device current)."""

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
        CuPy adds "nccl" and CUDA-aware MPI). ``world`` is what ``mpi_comm.open_world`` returned."""
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

    def device_label(self) -> str:
        """This backend's device as ``device_name`` spells an array's device ("cpu", "cuda:0",
        "device1")."""
        return str(self.device)

    def describe(self) -> str:
        return f"{self.name} on {self.device_label()}"

    def __repr__(self) -> str:
        return f"<gdnet backend {self.describe()}>"


class Uploader:
    """Sends host batches to a backend's device for the DataLoader's streamed mode, one call
    per array. This one converts on the host and copies with ``asarray``; GPU backends return
    one that stages through pinned host memory and copies on a side stream (``_staging``)."""

    # whether every array send returns is new (else it may alias the host array it was given)
    owns_result = False

    def __init__(self, backend: Backend):
        self.backend = backend

    def send(self, array: np.ndarray, dtype: str) -> Any:
        """A device array holding ``array``'s values converted to ``dtype`` (a NumPy name such as
        'float32'); it may alias ``array`` where the device is host memory."""
        return self.backend.asarray(array.astype(dtype, copy=False), dtype=getattr(self.backend.xp, dtype))


def register_fast_path(registry: dict[str, Callable[..., Any]], name: str):
    """Decorator: put a function into a backend's fast-path registry under ``name``."""

    def put(fn: Callable[..., Any]) -> Callable[..., Any]:
        registry[name] = fn
        return fn

    return put


class HostGenerator:
    """NumPy's PCG64 behind the draws gdnet needs; host arrays out."""

    def __init__(self, seed: int):
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def normal(self, shape, mean=0.0, std=1.0) -> np.ndarray:
        return self._rng.normal(mean, std, size=shape)

    def uniform(self, shape, low=0.0, high=1.0) -> np.ndarray:
        return self._rng.uniform(low, high, size=shape)

    def bernoulli(self, p, shape) -> np.ndarray:
        return self._rng.random(size=shape) < p

    def permutation(self, n: int) -> np.ndarray:
        return self._rng.permutation(n).astype(np.int64)

    def integers(self, low: int, high: int) -> int:
        return int(self._rng.integers(low, high))

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state


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
        self._host = HostGenerator(seed)

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
