"""CuPy on a CUDA GPU. cupy is imported only when this backend is used."""

from __future__ import annotations

import sys

import numpy as np

from ._base import Backend, BackendUnavailableError, DeviceGenerator

FAST_PATHS: dict = {}

_INSTALL_HINT = (
    "install CuPy for your CUDA version, e.g. `pip install 'gdnet-array[cuda13]'` "
    "(cupy-cuda13x) or `pip install 'gdnet-array[cuda12]'` (cupy-cuda12x)"
)


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(f"cupy is not installed; {_INSTALL_HINT}") from exc
    return cupy


class CupyBackend(Backend):
    name = "cupy"
    sync_is_free = False
    fast_paths = FAST_PATHS

    def __init__(self, device: str | int | None = None):
        reason = self.unavailable_reason()
        if reason:
            raise BackendUnavailableError(reason)
        cupy = _cupy()
        import array_api_compat.cupy as xp_cupy

        index = 0 if device in (None, "cuda") else int(str(device).removeprefix("cuda:"))
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < count:
            raise ValueError(f"CUDA device {index} does not exist; this machine has {count}")
        self._cupy = cupy
        super().__init__(xp_cupy, cupy.cuda.Device(index))
        _load_fast_paths()

    @classmethod
    def unavailable_reason(cls):
        try:
            cupy = _cupy()
        except BackendUnavailableError as exc:
            return str(exc)
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            return f"cupy is installed but no CUDA device answers ({exc}); use 'numpy' on this machine"
        if count == 0:
            return "cupy is installed but this machine has no CUDA device; use 'numpy'"
        return None

    @classmethod
    def devices(cls) -> list[str]:
        if "cupy" not in sys.modules and not cls.is_available():
            return []
        return [f"cuda:{i}" for i in range(_cupy().cuda.runtime.getDeviceCount())]

    def asarray(self, obj, dtype=None):
        with self.device:
            return self._cupy.asarray(obj, dtype=dtype)

    def to_host(self, array) -> np.ndarray:
        return self._cupy.asnumpy(array)

    def synchronize(self) -> None:
        self.device.synchronize()

    def memory_free(self) -> int:
        with self.device:
            free, _total = self._cupy.cuda.runtime.memGetInfo()
        return int(free)

    def generator(self, seed: int) -> DeviceGenerator:
        return CupyGenerator(self, seed)

    def communicator(self, world, engine):
        """NCCL ("nccl"), or MPI: CUDA-aware where the MPI library is, else through host copies."""
        if engine == "nccl":
            from .nccl_comm import NCCLCommunicator

            return NCCLCommunicator(world, self.device)
        if engine == "mpi":
            from .nccl_comm import CudaAwareMPICommunicator, cuda_aware_mpi

            if cuda_aware_mpi():
                return CudaAwareMPICommunicator(world, self.device)
        return super().communicator(world, engine)

    def describe(self) -> str:
        return f"cupy on cuda:{self.device.id}"


class CupyGenerator(DeviceGenerator):
    """Draws made on the GPU (no host transfer inside a training step)."""

    def __init__(self, backend: CupyBackend, seed: int):
        self._cupy = backend._cupy
        self._device = backend.device
        with self._device:
            self._rs = self._cupy.random.RandomState(seed)

    def normal(self, shape, dtype, mean=0.0, std=1.0):
        with self._device:
            return self._rs.normal(mean, std, size=shape, dtype=dtype)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        with self._device:
            return self._rs.uniform(low, high, size=shape, dtype=dtype)

    def bernoulli(self, p, shape, dtype):
        with self._device:
            return (self._rs.random_sample(size=shape, dtype=self._cupy.float32) < p).astype(dtype)

    def permutation(self, n):
        with self._device:
            return self._rs.permutation(n).astype(self._cupy.int64)


def _load_fast_paths() -> None:
    """Register the CUDA kernels (kept in cupy_kernels so this module stays importable)."""
    from . import cupy_kernels  # noqa: F401


BACKEND = CupyBackend
