"""The safetensors file format (https://github.com/huggingface/safetensors): gdnet's checks of a
header, made before the ``safetensors`` package (``gdnet.backends.safetensors_io``) reads the
tensors.

A file is an 8-byte little-endian header length N, N bytes of JSON, then the tensors' raw
little-endian bytes, back to back. The JSON maps each tensor name to {"dtype", "shape",
"data_offsets": [begin, end]} (offsets into the bytes after the header), and may hold
"__metadata__", a map of strings to strings. Nothing in it is ever executed.

Reading is bounded by what the file claims: the length first (checked against the file's size
and MAX_HEADER_BYTES), then the JSON (its values counted before it is parsed, capped at
MAX_JSON_VALUES, so a header within the caps costs at most about 100 MB of Python objects; its
nesting caught), then its tensors (at most MAX_TENSORS; known dtypes, sizes that match their
shapes, no gaps or overlaps) against the file's length. Only a file that passes goes to the
package, which checks the header again as it maps and reads the tensors.

Why gdnet checks first rather than leaving it all to the package: the package opens paths only,
not file objects (so it cannot bound what a stream costs before it is read); it caps neither
the tensors nor the values of a header (measured with safetensors 0.8: a header of 1,000,000
zero-size tensors, 67 MB, took 3.1 s and 365 MB to open, a 20,000,000-long shape 500 MB); and
its errors name a variant ("MetadataIncompleteBuffer") where these say which bytes are wrong.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from .._io import read_at_most

# safetensors dtype -> (dtype name, bytes per element): those NumPy holds (not BF16 or F8)
DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1),
    "U64": ("uint64", 8), "U32": ("uint32", 4), "U16": ("uint16", 2), "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
CODES = {name: code for code, (name, _) in DTYPES.items()}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit
# Caps that bound what a crafted header costs to parse (Python builds an object per JSON value).
# A gdnet checkpoint's header holds about 20 values per tensor (its entry, and the metadata's
# architecture and SHA-256 listing); a model with optimizer state has a few thousand tensors.
MAX_TENSORS = 32_768
MAX_JSON_VALUES = 32 * MAX_TENSORS


class SafetensorsError(ValueError):
    """The bytes are not a well-formed safetensors file."""


@dataclass(frozen=True)
class Entry:
    """One tensor of a file: its dtype code, shape, and where its bytes lie (offsets from the
    start of the tensor bytes, which follow the header)."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    stop: int


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _known_formats(head: bytes) -> str:
    """Why a file that fails to parse is not safetensors, where its first bytes say."""
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return (f" it is a pickle file (protocol {head[1]}), and gdnet never unpickles: a pickle can run any "
                "code when loaded")
    if head.startswith(b"PK\x03\x04"):
        return " it is a zip archive (torch.save writes these); convert it with safetensors.torch.save_file"
    return ""


@dataclass(frozen=True)
class Header:
    """What the first ``start`` bytes of a file say: its tensors (offsets counted from
    ``start``, where the tensor bytes begin), its metadata, and how many tensor bytes follow."""

    entries: dict[str, Entry]
    metadata: dict[str, str]
    start: int
    data_bytes: int
    text: str | None = None  # the JSON as read, where ``read_header`` was asked to keep it


def file_bytes(header: Header, data: bytearray) -> bytes:
    """The whole file again, from a header read with ``keep`` and the tensor bytes after it
    (strict UTF-8 decoding is one-to-one, so encoding the text gives back the bytes read)."""
    if header.text is None:
        raise ValueError("file_bytes needs a header read with keep=True")
    return b"".join([struct.pack("<Q", header.start - 8), header.text.encode("utf-8"), data])


def read_header(stream: BinaryIO, size: int | None, source: str, keep: bool = False) -> Header:
    """Read and check the length prefix and JSON header of a file, and nothing after them.

    Args:
        stream: positioned at the start of the file.
        size: the file's size in bytes, or None where it is not known (a pipe, a socket):
            the header length is then checked as it is read.
        keep: keep the header's JSON text in ``Header.text`` (to hand the whole file on
            later, with ``file_bytes``); by default it is dropped once parsed.
    Raises:
        SafetensorsError naming what is wrong: too short, a pickle or zip file, a header
        length past the end of the file or above MAX_HEADER_BYTES, a header that is not JSON,
        lacks a field or holds more than MAX_TENSORS tensors or MAX_JSON_VALUES values (or
        is nested too deeply), an unknown dtype, a size that does not match the shape,
        overlapping or missing bytes, or (where ``size`` is known) a file shorter or longer
        than its tensors.
    """
    first = bytes(read_at_most(stream, 8))
    try:
        header = _read_header(stream, first, size, source, keep)
    except SafetensorsError as exc:
        known = _known_formats(first)
        if known:
            raise SafetensorsError(f"{source} is not a safetensors file:{known}") from exc
        raise
    if size is not None:
        check_length(header, size - header.start, source)
    return header


def check_length(header: Header, held: int, source: str, exact: bool = True) -> None:
    """SafetensorsError unless the ``held`` bytes after the header (at least that many, where
    not ``exact``) are the tensor bytes the header announces."""
    if held < header.data_bytes:
        raise SafetensorsError(f"{source} is truncated: its tensors need {header.data_bytes} bytes of data and the "
                               f"file holds {held}")
    if held > header.data_bytes:
        extra = f"{held - header.data_bytes} bytes follow" if exact else "more bytes follow"
        raise SafetensorsError(f"{source} is damaged: {extra} the last tensor")


def read_data(stream: BinaryIO, header: Header, source: str) -> bytearray:
    """The tensor bytes of a stream whose header was read, read in chunks up to one byte past
    what the header announces (to notice trailing data), so a stream that never ends costs no
    more than the file it claims to be."""
    data = read_at_most(stream, header.data_bytes + 1)
    check_length(header, len(data), source, exact=False)
    return data


def _count_values(text: bytearray) -> int:
    """An upper bound on the JSON values in ``text`` (each follows a comma or opens a container),
    counted at C speed before Python builds an object for any of them."""
    return sum(text.count(mark) for mark in (b",", b"[", b"{")) + 1


def _read_header(stream: BinaryIO, first: bytes, size: int | None, source: str, keep: bool) -> Header:
    if len(first) < 8:
        raise SafetensorsError(f"{source} is not a safetensors file: {len(first)} bytes, too short for the 8-byte "
                               "header length")
    (length,) = struct.unpack("<Q", first)
    if size is not None and length > size - 8:
        raise SafetensorsError(f"{source} is truncated or not a safetensors file: its header length says {length} "
                               f"bytes, but {size - 8} follow")
    if length > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{source}: its header length says {length} bytes; safetensors headers hold at most "
                               f"{MAX_HEADER_BYTES} (is this a safetensors file?)")
    raw = read_at_most(stream, length)
    if len(raw) < length:
        raise SafetensorsError(f"{source} is truncated or not a safetensors file: its header length says {length} "
                               f"bytes, but {len(raw)} follow")
    values = _count_values(raw)
    if values > MAX_JSON_VALUES:
        raise SafetensorsError(f"{source}: its header holds up to {values} JSON values; gdnet reads at most "
                               f"{MAX_JSON_VALUES} (about {MAX_TENSORS} tensors)")
    try:
        if raw[:1] != b"{":
            raise ValueError("it does not start with '{'")
        text = raw.decode("utf-8")
        raw.clear()  # one copy of the header at a time
        header = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise SafetensorsError(f"{source} is damaged or crafted: its header is JSON nested too deeply to "
                               "read") from exc
    except ValueError as exc:
        raise SafetensorsError(f"{source} is damaged or not a safetensors file: its header is not a JSON object "
                               f"({exc})") from exc
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: the header is JSON but not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: __metadata__ must map strings to strings")
    if len(header) > MAX_TENSORS:
        raise SafetensorsError(f"{source}: its header lists {len(header)} tensors; gdnet reads at most {MAX_TENSORS}")
    entries = {name: _entry(name, info, source) for name, info in header.items()}
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].start, item[1].stop)):
        if entry.start != position:
            problem = "overlaps the tensor before it" if entry.start < position else "leaves a gap before it"
            raise SafetensorsError(f"{source} is damaged: tensor {name!r} {problem} (data offset "
                                   f"{entry.start}, expected {position})")
        position = entry.stop
    return Header(entries, metadata, 8 + length, position, text if keep else None)


def _entry(name: str, info: Any, source: str) -> Entry:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        got = sorted(info) if isinstance(info, dict) else type(info).__name__
        raise SafetensorsError(f"{source}: tensor {name!r} should have dtype, shape and data_offsets; got {got}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in DTYPES:
        raise SafetensorsError(f"{source}: tensor {name!r} has dtype {code!r}; gdnet reads {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise SafetensorsError(f"{source}: tensor {name!r} has shape {shape!r}; expected a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets)
            or offsets[0] > offsets[1]):
        raise SafetensorsError(f"{source}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
    needed = math.prod(shape) * DTYPES[code][1]
    if offsets[1] - offsets[0] != needed:
        raise SafetensorsError(f"{source}: tensor {name!r} ({code} of shape {tuple(shape)}) needs {needed} bytes, "
                               f"but its offsets span {offsets[1] - offsets[0]}")
    return Entry(code, tuple(shape), offsets[0], offsets[1])
