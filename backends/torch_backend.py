"""PyTorch tensors on any torch device (cpu, cuda, cuda:1, mps, meta), through
array-api-compat's torch namespace. torch is imported only when this backend is used.

``meta`` tensors have shapes and dtypes but no values, and any read of one raises: the test
suite trains on it to prove that a training step reads nothing back from the device.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ._base import Backend, BackendUnavailableError, DeviceGenerator

FAST_PATHS: dict = {}

_INSTALL_HINT = (
    "install PyTorch for your platform (https://pytorch.org/get-started/locally/), e.g. `pip install torch`; "
    "from a gdnet checkout, `pip install -e '.[torch]'`"
)
_DEVICE_TYPES = ("cpu", "cuda", "mps", "meta")


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"torch is not installed; {_INSTALL_HINT}") from exc
    return torch


def _namespace():
    import array_api_compat.torch as xp_torch

    return xp_torch


def _device_unavailable(torch, device) -> str | None:
    """Why torch cannot use ``device`` here (None: it can)."""
    kind = device.type
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "torch has no CUDA device here (a CPU-only build, or no GPU); use device 'cpu'"
        count = torch.cuda.device_count()
        if device.index is not None and not 0 <= device.index < count:
            return f"CUDA device {device.index} does not exist; this machine has {count}"
    elif kind == "mps" and not torch.backends.mps.is_available():
        return "torch has no MPS device here (it needs Apple silicon and macOS 12.3 or later); use device 'cpu'"
    elif kind not in _DEVICE_TYPES:
        return f"torch device type {kind!r} is not supported by gdnet; expected one of {', '.join(_DEVICE_TYPES)}"
    return None


def _parse_device(torch, device):
    """'cuda' -> cuda:<current>, 'mps' -> mps:0: the device the tensors made there report."""
    try:
        device = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown torch device {device!r}; expected one of {', '.join(_DEVICE_TYPES)} "
                         "(cuda:1 for a second GPU)") from exc
    if device.index is None and device.type == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if device.index is None and device.type == "mps":
        return torch.device("mps", 0)
    return device


def has_float64(device_type: str) -> bool:
    """Whether torch computes in float64 on this type of device (Apple's MPS does not)."""
    return device_type != "mps"


class TorchBackend(Backend):
    name = "torch"
    array_class = "torch:Tensor"
    distributions = ("torch",)
    auto_rank = 10  # after cupy, before numpy: only where torch has a GPU (CUDA or MPS)
    test_rows = (("torch-cpu", "cpu"), ("torch-meta", "meta"), ("torch-cuda", "cuda"))
    sync_is_free = False  # reading a tensor of an unknown device may synchronise; see reads_are_free
    fast_paths = FAST_PATHS
    kernels = "torch_kernels"

    def __init__(self, device=None):
        torch = _torch()
        device = _parse_device(torch, device)
        reason = _device_unavailable(torch, device)
        if reason:
            raise BackendUnavailableError(reason)
        super().__init__(_namespace(), device)
        self._torch = torch
        self.sync_is_free = device.type == "cpu"
        self.holds_values = device.type != "meta"
        self.load_fast_paths()

    # -- availability ---------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls, device=None):
        try:
            torch = _torch()
        except BackendUnavailableError as exc:
            return str(exc)
        if device is None:
            return None
        try:
            return _device_unavailable(torch, _parse_device(torch, device))
        except ValueError as exc:
            return str(exc)

    @classmethod
    def devices(cls) -> list[str]:
        if "torch" not in sys.modules and cls.unavailable_reason() is not None:
            return []
        torch = _torch()
        found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if torch.backends.mps.is_available():
            found.append("mps")
        return found + ["meta"]

    @classmethod
    def device_holds_values(cls, device):
        return not str(device).startswith("meta")

    @classmethod
    def auto_device(cls):
        # importing torch takes a second or more: ask it only where an accelerator may be there
        maybe_gpu = "torch" in sys.modules or sys.platform == "darwin" or any(
            os.path.exists(path) for path in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd"))
        if not maybe_gpu or cls.unavailable_reason() is not None:
            return None
        torch = _torch()
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return None

    # -- the arrays of this library -------------------------------------------------------------
    @classmethod
    def namespace(cls, array):
        return _namespace()

    @classmethod
    def to_host(cls, array) -> np.ndarray:
        # a copy even on the CPU, where .numpy() would share the tensor's memory
        return array.detach().to("cpu", copy=True).numpy()

    @classmethod
    def reads_are_free(cls, array) -> bool:
        return array.device.type == "cpu"

    @classmethod
    def value_range(cls, array):
        if array.device.type != "cpu":
            return None
        low, high = _torch().aminmax(array)
        return low.item(), high.item()

    @classmethod
    def device_name(cls, array) -> str:
        return str(array.device)

    # -- transfer -------------------------------------------------------------------------------
    def asarray(self, obj, dtype=None):
        self._check_dtype(dtype if dtype is not None else getattr(obj, "dtype", None))
        torch = self._torch
        if isinstance(obj, np.ndarray) and not obj.flags.writeable:
            obj = np.array(obj)  # torch refuses to share memory it may not write
        return torch.asarray(obj, dtype=dtype, device=self.device)

    def _check_dtype(self, dtype) -> None:
        if dtype is not None and not has_float64(self.device.type) and "float64" in str(dtype):
            raise TypeError(f"{self.describe()} has no float64; expected float32 (or a device with float64)")

    def uploader(self):
        if self.device.type != "cuda":
            return super().uploader()
        from ._staging import torch_uploader

        return torch_uploader(self)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            self._torch.mps.synchronize()

    def memory_free(self) -> int | None:
        if self.device.type == "cuda":
            free, _total = self._torch.cuda.mem_get_info(self.device)
            return int(free)
        return None

    def supports_dtype(self, dtype_name: str) -> bool:
        return dtype_name != "float64" or has_float64(self.device.type)

    def generator(self, seed: int) -> DeviceGenerator:
        return TorchGenerator(self, seed)


class TorchGenerator(DeviceGenerator):
    """Per-step draws (dropout masks) made on the device by a seeded ``torch.Generator``, so no
    host transfer happens inside a training step. Meta tensors hold no values, so draws there
    take no generator."""

    def __init__(self, backend: TorchBackend, seed: int):
        torch = self._torch = backend._torch
        self._device = backend.device
        self._generator = None
        if backend.holds_values:
            self._generator = torch.Generator(device=backend.device)
            self._generator.manual_seed(seed)

    def _empty(self, shape, dtype):
        return self._torch.empty(tuple(shape), dtype=dtype, device=self._device)

    def normal(self, shape, dtype, mean=0.0, std=1.0):
        return self._empty(shape, dtype).normal_(mean, std, generator=self._generator)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        return self._empty(shape, dtype).uniform_(low, high, generator=self._generator)

    def bernoulli(self, p, shape, dtype):
        return self._empty(shape, dtype).bernoulli_(p, generator=self._generator)

    def permutation(self, n):
        return self._torch.randperm(n, generator=self._generator, device=self._device)

    def get_state(self) -> np.ndarray | None:
        """The generator's state as host bytes (uint8), for checkpoints."""
        return None if self._generator is None else self._generator.get_state().numpy().copy()

    def set_state(self, state) -> None:
        if self._generator is not None and state is not None:
            self._generator.set_state(self._torch.from_numpy(np.array(state, dtype=np.uint8)))


BACKEND = TorchBackend
