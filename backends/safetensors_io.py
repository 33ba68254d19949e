"""safetensors files through Hugging Face's ``safetensors`` package, its reference implementation
(https://github.com/huggingface/safetensors): the only module that imports it.

Host (NumPy) arrays and str -> str metadata in, a file out, and back. gdnet's checkpoint
code checks a file's header itself before it calls these (``gdnet/train/_safetensors.py``:
caps on the header's size, values, tensors and nesting, and the file's length), because the
package opens paths only, not file objects, and caps neither the tensors nor the values of a
header (measured with safetensors 0.8: a header of 1,000,000 zero-size tensors, 67 MB, took
3.1 s and 365 MB to open).
"""

from __future__ import annotations

import os

import numpy as np
import safetensors
import safetensors.numpy


class SafetensorsPackageError(ValueError):
    """The ``safetensors`` package refused a file (its message says why)."""


def stored(array: np.ndarray) -> np.ndarray:
    """``array`` as a safetensors file stores it: C order, little-endian (the same array where
    it is already so). Its buffer is the bytes written, for a checksum."""
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def write_file(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write a safetensors file of ``arrays`` (host arrays, as ``stored`` gives them) and
    ``metadata`` at ``path`` with ``safetensors.numpy.save_file`` (tensors ordered by
    alignment, then name; written from the arrays, without the whole file in memory)."""
    safetensors.numpy.save_file({name: stored(array) for name, array in arrays.items()}, os.fspath(path),
                                metadata=metadata)


def _writable(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays a model may update in place: the package's own where they are writable (they are
    copies of the file's bytes, made by the package), else copies."""
    return {name: a if a.flags.writeable else np.array(a) for name, a in arrays.items()}


def read_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of the safetensors file at ``path``, memory-mapped by the package and copied
    tensor by tensor into host arrays, and the file's metadata ({} where it has none).

    Raises:
        SafetensorsPackageError: the package refuses the file.
    """
    try:
        with safetensors.safe_open(os.fspath(path), framework="numpy") as file:
            metadata = file.metadata() or {}
            arrays = {name: file.get_tensor(name) for name in file.keys()}
    except safetensors.SafetensorError as exc:
        raise SafetensorsPackageError(str(exc)) from exc
    return _writable(arrays), metadata


def read_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file's bytes, as host arrays (``safetensors.numpy.load``).

    Raises:
        SafetensorsPackageError: the package refuses the bytes.
    """
    try:
        arrays = safetensors.numpy.load(data)
    except safetensors.SafetensorError as exc:
        raise SafetensorsPackageError(str(exc)) from exc
    return _writable(arrays)
