"""CuPy on a CUDA GPU. cupy is imported only when this backend is used."""

from __future__ import annotations

import sys

import numpy as np

from ._base import Backend, BackendUnavailableError, DeviceGenerator

FAST_PATHS: dict = {}

_INSTALL_HINT = (
    "install the CuPy wheel for your CUDA version: `pip install cupy-cuda13x` (CUDA 13) or "
    "`pip install cupy-cuda12x` (CUDA 12); from a gdnet checkout, `pip install -e '.[cuda13]'` does the same"
)


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(f"cupy is not installed; {_INSTALL_HINT}") from exc
    return cupy


class CupyBackend(Backend):
    name = "cupy"
    array_class = "cupy:ndarray"
    distributions = ("cupy", "cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy-rocm-6-0", "cupy-rocm-5-0")
    auto_rank = 0  # a CUDA device, when one answers, before anything else
    test_rows = (("cupy", None),)
    sync_is_free = False
    fast_paths = FAST_PATHS
    kernels = "cupy_kernels"  # the CUDA kernels, kept apart so this module imports without cupy

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
        self.load_fast_paths()

    @classmethod
    def unavailable_reason(cls, device=None):
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

    @classmethod
    def auto_device(cls):
        return "cuda:0" if cls.is_available() else None

    @classmethod
    def namespace(cls, array):
        import array_api_compat.cupy as xp_cupy

        return xp_cupy

    @classmethod
    def to_host(cls, array) -> np.ndarray:
        return array.get()  # a new host array, after the device has finished writing it

    @classmethod
    def device_name(cls, array) -> str:
        return f"cuda:{array.device.id}"

    @classmethod
    def device_scope(cls, array):
        # CuPy launches on the current device; an array of another one must make its own current
        return array.device

    def activate(self) -> None:
        self.device.use()

    def asarray(self, obj, dtype=None):
        with self.device:
            return self._cupy.asarray(obj, dtype=dtype)

    def uploader(self):
        from ._staging import cupy_uploader

        return cupy_uploader(self)

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

    def device_label(self) -> str:
        return f"cuda:{self.device.id}"


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


BACKEND = CupyBackend
