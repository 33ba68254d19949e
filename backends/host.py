"""Host (CPU memory) arrays: NumPy under a small surface that core code calls by name.

Datasets live on the host as NumPy arrays; core code builds and inspects them only through
these functions, so it never imports NumPy itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import owner
from ._base import HostGenerator  # noqa: F401  (the seeded host generator, beside the device ones in _base)

HostArray = np.ndarray


def is_host_array(obj: Any) -> bool:
    return isinstance(obj, np.ndarray)


def asarray(obj: Any, dtype: str | None = None) -> np.ndarray:
    """Any array-like (NumPy, sequences, objects with __array__ or DLPack) -> NumPy array."""
    return np.asarray(obj, dtype=dtype)


def from_buffer(buffer: bytes, dtype: str, shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """A read-only NumPy view of ``buffer`` (``dtype`` as a NumPy string such as '>i4')."""
    count = int(np.prod(shape)) if shape else 1
    return np.frombuffer(buffer, dtype=np.dtype(dtype), count=count, offset=offset).reshape(shape)


def to_native(array: np.ndarray) -> np.ndarray:
    """Native byte order, C-contiguous (IDX files store big-endian numbers)."""
    return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("="), copy=False))


def dtype_name(array: np.ndarray) -> str:
    return array.dtype.name


def has_nan(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and bool(np.isnan(array).any())


def value_range(array: np.ndarray) -> tuple[int, int] | tuple[float, float]:
    """(min, max) of a non-empty host array as Python numbers: ints (exact) for integer and bool
    dtypes, floats otherwise. ``Backend.value_range`` gives the same answer for an array of any
    backend, or None where reading it is not free."""
    # the ufuncs' own reductions: the function and method spellings add Python-level wrappers,
    # which cost more than the work on a batch of labels
    low, high = np.minimum.reduce(array, axis=None), np.maximum.reduce(array, axis=None)
    kind = int if array.dtype.kind in "iub" else float
    return kind(low), kind(high)


def nbytes(array: np.ndarray) -> int:
    return int(array.nbytes)


def arange(n: int) -> np.ndarray:
    """0, 1, ..., n - 1 as int64."""
    return np.arange(n, dtype=np.int64)


def cyclic(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` cut to ``size`` elements, or repeated from its start up to ``size`` (NumPy's
    resize: how PyTorch's DistributedSampler pads an epoch)."""
    return np.resize(array, size)


def take(array: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.take(array, indices, axis=0)


def save_npz(path: str, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)


def load_npz(path: str) -> dict[str, np.ndarray]:
    """Arrays from an .npz file; never unpickles (object arrays are refused)."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def to_numpy(array: Any) -> np.ndarray:
    """An array of any backend -> a NumPy copy in host memory (the one explicit transfer), by
    the backend that owns it."""
    return owner(array).to_host(array)


# PyTorch's print options: 4 decimals, arrays over 1000 elements summarised by 3 at each edge
_PRINT_THRESHOLD, _PRINT_EDGE, _PRINT_PRECISION = 1000, 3, 4


def format_values(array: Any, prefix: str = "") -> tuple[str, bool]:
    """(the values of an array of any backend as text, whether they were summarised), printed
    as PyTorch prints a tensor's; ``prefix`` is what precedes the text on its first line."""
    values = to_numpy(array)
    summarised = values.size > _PRINT_THRESHOLD
    floatmode = "fixed" if values.dtype.kind == "f" else "maxprec"
    text = np.array2string(values, precision=_PRINT_PRECISION, floatmode=floatmode, threshold=_PRINT_THRESHOLD,
                           edgeitems=_PRINT_EDGE, separator=", ", prefix=prefix)
    return text, summarised


def device_label(array: Any) -> str | None:
    """A short name of the device holding ``array`` ('device1', 'cuda:0'), or None where it is
    host memory (NumPy; array_api_strict's CPU_DEVICE; torch's cpu)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return None
    device = getattr(array, "device", None)
    module = type(array).__module__
    if module.startswith("cupy"):
        return f"cuda:{device.id}"
    text = str(device)
    if module.startswith("array_api_strict"):
        text = text.split("'")[1] if "'" in text else text
        return None if text == "CPU_DEVICE" else text
    return None if text == "cpu" else text


def dtype_kind(array: np.ndarray) -> str:
    """One letter for ``array``'s kind of dtype: 'u' unsigned integer, 'i' signed integer,
    'f' floating, 'b' bool, 'c' complex, 'O' object, and NumPy's other kind letters."""
    return array.dtype.kind


def astype(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` converted to ``dtype`` (a NumPy name such as 'float32'); the same array, not a
    copy, when it already has that dtype."""
    return array.astype(dtype, copy=False)


def to_bytes(array: np.ndarray, dtype: str) -> bytes:
    """The values of ``array`` converted to ``dtype`` (a NumPy string such as '>i4', big-endian
    int32) as bytes in C order."""
    return np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()


def first_nonfinite(array: np.ndarray) -> tuple[tuple[int, ...], float] | None:
    """(index, value) of the first NaN or +-inf of a floating array in C order (the index one
    int per axis), or None where it has none (or is not floating)."""
    if array.dtype.kind not in "fc":
        return None
    flat_position = np.flatnonzero(~np.isfinite(array))
    if flat_position.size == 0:
        return None
    index = tuple(int(i) for i in np.unravel_index(int(flat_position[0]), array.shape))
    return index, array[index].item()


def count_nonfinite(array: np.ndarray) -> int:
    """How many NaNs and infinities a floating array holds (0 for other dtypes)."""
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def first_item(array: np.ndarray) -> Any:
    """The first element of a host array in C order, as a Python object (None if empty)."""
    if not array.size:
        return None
    item = array.flat[0]
    return item.item() if isinstance(item, np.generic) else item


def itemsize(dtype: str) -> int:
    """Bytes per element of ``dtype`` (a NumPy name such as 'uint8' or 'float32')."""
    return int(np.dtype(dtype).itemsize)


def to_list(array: Any) -> list:
    """An array of any backend -> its values as (nested lists of) Python numbers, through one
    device->host transfer."""
    return to_numpy(array).tolist()
