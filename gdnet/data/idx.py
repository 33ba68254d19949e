"""IDX files, the format MNIST and Fashion-MNIST ship in, raw or gzip-compressed.

Layout (all numbers big-endian)::

    byte 0, 1   zero (the magic number's first half)
    byte 2      element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte 3      number of dimensions, d
    4 * d       the size of each dimension, uint32
    the rest    prod(sizes) elements, C order

A gzip stream is recognised by its magic bytes (1f 8b), not by the file name.
"""

from __future__ import annotations

import gzip as _gzip
import os
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from .._io import atomic_write, open_regular, read_at_most
from ..backends import host

GZIP_MAGIC = b"\x1f\x8b"
HEADER_BYTES = 4  # two zero bytes, the type code, the number of dimensions
DIMENSION_BYTES = 4  # each size is a big-endian uint32

# type code -> (NumPy dtype name, big-endian NumPy dtype string, bytes per element)
IDX_TYPES: dict[int, tuple[str, str, int]] = {
    0x08: ("uint8", ">u1", 1),
    0x09: ("int8", ">i1", 1),
    0x0B: ("int16", ">i2", 2),
    0x0C: ("int32", ">i4", 4),
    0x0D: ("float32", ">f4", 4),
    0x0E: ("float64", ">f8", 8),
}
_CODE_BY_DTYPE = {name: code for code, (name, _, _) in IDX_TYPES.items()}
_LARGEST_DIMENSION = 2**32 - 1


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file (or an array cannot be written as one)."""


def _known_codes() -> str:
    return ", ".join(f"0x{code:02X} {name}" for code, (name, _, _) in IDX_TYPES.items())


def _gzip_error(path: Path, exc: BaseException) -> IDXFormatError:
    # EOFError: the stream stops early; BadGzipFile (an OSError) and zlib.error: corrupt
    return IDXFormatError(
        f"{path}: the gzip stream is truncated or corrupt ({exc}); expected a complete gzip "
        "file (starts with bytes 1f 8b); download or copy the file again"
    )


def _read(stream: BinaryIO, limit: int, path: Path) -> bytearray:
    try:
        return read_at_most(stream, limit)
    except (EOFError, OSError, zlib.error) as exc:
        if isinstance(stream, _gzip.GzipFile):
            raise _gzip_error(path, exc) from exc
        raise


def _length_error(where: str, shape: tuple[int, ...], dtype_name: str, header: int, data: int,
                  length: int, exact: bool) -> IDXFormatError:
    """The file holds ``length`` bytes (or, where not ``exact``, at least that many) instead of
    header + data."""
    expected = header + data
    problem = "truncated" if length < expected else "has trailing bytes"
    held = f"{length} bytes" if exact or length < expected else f"more than {expected} bytes"
    return IDXFormatError(
        f"{where}: {problem}: shape {shape} of {dtype_name} needs {header} header + {data} data = "
        f"{expected} bytes; the file has {held}"
    )


def read_idx(path: str | os.PathLike) -> Any:
    """Read an IDX file (raw, or gzip-compressed; detected by content) into a host array.

    The header is read first; then at most the bytes it announces (plus one, to notice
    trailing data) are read or decompressed, so a damaged or crafted file costs no more memory
    than the array its header describes.

    Args:
        path: the file (a regular file, or a symbolic link to one).
    Returns:
        a NumPy array of shape (d0, d1, ..., d_{k-1}) as the header gives it, in the header's
        element type and native byte order, writeable.
    Raises:
        IDXFormatError: bad magic bytes, unknown type code, no dimensions, a corrupt or truncated
            gzip stream, a data length other than prod(sizes) * element size, or a path that
            is not a regular file (a directory, a device such as /dev/zero, a FIFO).
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    with open_regular(path, IDXFormatError) as (file, size):
        compressed = file.read(2) == GZIP_MAGIC
        file.seek(0)
        stream: BinaryIO = _gzip.GzipFile(fileobj=file, mode="rb") if compressed else file
        where = f"{path}{' (after gzip decompression)' if compressed else ''}"
        raw = _read(stream, HEADER_BYTES, path)
        if len(raw) < HEADER_BYTES:
            raise IDXFormatError(
                f"{where}: {len(raw)} bytes is too short for an IDX header; expected at least "
                f"{HEADER_BYTES} bytes (00 00, type code, number of dimensions)"
            )
        if raw[0] != 0 or raw[1] != 0:
            raise IDXFormatError(
                f"{where}: bad magic number: the first two bytes are {raw[0]:02x} {raw[1]:02x}; "
                "expected 00 00 (is this an IDX file?)"
            )
        code, ndim = raw[2], raw[3]
        if code not in IDX_TYPES:
            raise IDXFormatError(
                f"{where}: unknown element type code 0x{code:02X}; expected one of: {_known_codes()}"
            )
        if ndim == 0:
            raise IDXFormatError(f"{where}: the header gives 0 dimensions; expected 1 to 255")
        data_start = HEADER_BYTES + DIMENSION_BYTES * ndim
        raw += _read(stream, data_start - HEADER_BYTES, path)
        if len(raw) < data_start:
            raise IDXFormatError(
                f"{where}: truncated header: {ndim} dimensions need {data_start} header bytes; "
                f"the file has {len(raw)} bytes"
            )
        shape = tuple(
            int.from_bytes(raw[offset : offset + DIMENSION_BYTES], "big")
            for offset in range(HEADER_BYTES, data_start, DIMENSION_BYTES)
        )
        dtype_name, big_endian, itemsize = IDX_TYPES[code]
        count = 1
        for dimension in shape:
            count *= dimension
        expected = data_start + count * itemsize
        # a raw file's size is known before reading; a gzip stream is read up to one byte past
        # what the header announces, which tells a longer stream apart without reading it all
        if not compressed and size != expected:
            raise _length_error(where, shape, dtype_name, data_start, count * itemsize, size, exact=True)
        data = _read(stream, count * itemsize + 1, path)
        length = data_start + len(data)
        if length != expected:
            raise _length_error(where, shape, dtype_name, data_start, count * itemsize, length, exact=False)
    # the bytearray makes the returned array writeable where no byte swap copies it anyway
    values = host.from_buffer(data, big_endian, shape)
    return host.to_native(values)


def write_idx(path: str | os.PathLike, array: Any, gzip: bool = False) -> None:
    """Write ``array`` as an IDX file; replace ``path`` atomically (``gdnet._io.atomic_write``:
    a temporary file, fsync, rename, the folder fsynced), creating missing folders.

    Args:
        path: the file to create or replace.
        array: a host array (or anything ``host.asarray`` accepts) of shape (d0, ..., d_{k-1}),
            k >= 1, each size below 2**32, dtype uint8, int8, int16, int32, float32
            or float64.
        gzip: compress the file with gzip (then ``read_idx`` detects it by content).
    Raises:
        IDXFormatError: a dtype IDX has no code for, no dimensions, or a size of 2**32 or
            more.
    """
    path = Path(path)
    if not host.is_host_array(array):
        array = host.asarray(array)
    dtype_name = host.dtype_name(array)
    if dtype_name not in _CODE_BY_DTYPE:
        raise IDXFormatError(
            f"cannot write {path}: dtype {dtype_name} has no IDX type code; expected one of: "
            f"{_known_codes()} (convert with .astype first)"
        )
    shape = tuple(array.shape)
    # host arrays have at most 64 dimensions, well inside the header's one byte
    if len(shape) == 0:
        raise IDXFormatError(
            f"cannot write {path}: the array has 0 dimensions; expected 1 to 255 "
            "(reshape a scalar to shape (1,))"
        )
    if any(size > _LARGEST_DIMENSION for size in shape):
        raise IDXFormatError(
            f"cannot write {path}: shape {shape} has a size above {_LARGEST_DIMENSION}, the "
            "largest a uint32 size field holds"
        )
    code = _CODE_BY_DTYPE[dtype_name]
    header = bytes([0, 0, code, len(shape)]) + b"".join(
        size.to_bytes(DIMENSION_BYTES, "big") for size in shape
    )
    content = header + host.to_bytes(array, IDX_TYPES[code][1])
    if gzip:
        # mtime=0: the same array always gives the same bytes (reproducible checksums)
        content = _gzip.compress(content, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [content])
