"""The safetensors file format (https://github.com/huggingface/safetensors), checked strictly.

A file is an 8-byte little-endian header length N, N bytes of JSON, then the tensors' raw
little-endian bytes, back to back. The JSON maps each tensor name to {"dtype", "shape",
"data_offsets": [begin, end]} (offsets into the bytes after the header), and may hold
"__metadata__", a map of strings to strings. Nothing in it is ever executed.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

# safetensors dtype -> (NumPy dtype name, little-endian NumPy dtype string, bytes per element)
DTYPES: dict[str, tuple[str, str, int]] = {
    "F64": ("float64", "<f8", 8), "F32": ("float32", "<f4", 4), "F16": ("float16", "<f2", 2),
    "I64": ("int64", "<i8", 8), "I32": ("int32", "<i4", 4), "I16": ("int16", "<i2", 2), "I8": ("int8", "|i1", 1),
    "U64": ("uint64", "<u8", 8), "U32": ("uint32", "<u4", 4), "U16": ("uint16", "<u2", 2), "U8": ("uint8", "|u1", 1),
    "BOOL": ("bool", "|b1", 1),
}
CODES = {name: code for code, (name, _, _) in DTYPES.items()}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit


class SafetensorsError(ValueError):
    """The bytes are not a well-formed safetensors file."""


@dataclass(frozen=True)
class Entry:
    """One tensor of a file: its dtype code, shape, and where its bytes lie in the file."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    stop: int


def encode_header(entries: list[tuple[str, str, tuple[int, ...], int]], metadata: dict[str, str]) -> bytes:
    """The length prefix and JSON header for tensors ``(name, dtype code, shape, byte count)``
    stored in this order, padded with spaces so the tensor bytes start 8-byte aligned."""
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, code, shape, size in entries:
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


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


def parse(buffer: bytes | memoryview, source: str) -> tuple[dict[str, Entry], dict[str, str]]:
    """The tensors (offsets counted from the start of ``buffer``) and metadata of a file.

    Raises SafetensorsError naming what is wrong: too short, a pickle or zip file, a header
    length past the end, a header that is not JSON or lacks a field, an unknown dtype, a size
    that does not match the shape, overlapping or missing bytes, or a truncated file.
    """
    try:
        return _parse(buffer, source)
    except SafetensorsError as exc:
        known = _known_formats(bytes(buffer[:8]))
        if known:
            raise SafetensorsError(f"{source} is not a safetensors file:{known}") from exc
        raise


def _parse(buffer: bytes | memoryview, source: str) -> tuple[dict[str, Entry], dict[str, str]]:
    size = len(buffer)
    if size < 8:
        raise SafetensorsError(f"{source} is not a safetensors file: {size} bytes, too short for the 8-byte "
                               "header length")
    (length,) = struct.unpack("<Q", bytes(buffer[:8]))
    if length > size - 8 or length > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{source} is truncated or not a safetensors file: its header length says {length} "
                               f"bytes, but {size - 8} follow")
    try:
        text = bytes(buffer[8:8 + length]).decode("utf-8")
        if not text.startswith("{"):
            raise ValueError("it does not start with '{'")
        header = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise SafetensorsError(f"{source} is damaged or not a safetensors file: its header is not a JSON object "
                               f"({exc})") from exc
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: the header is JSON but not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: __metadata__ must map strings to strings")
    start = 8 + length
    entries = {name: _entry(name, info, start, source) for name, info in header.items()}
    position = start
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].start, item[1].stop)):
        if entry.start != position:
            problem = "overlaps the tensor before it" if entry.start < position else "leaves a gap before it"
            raise SafetensorsError(f"{source} is damaged: tensor {name!r} {problem} (data offset "
                                   f"{entry.start - start}, expected {position - start})")
        position = entry.stop
    if position > size:
        raise SafetensorsError(f"{source} is truncated: its tensors need {position - start} bytes of data and the "
                               f"file holds {size - start}")
    if position < size:
        raise SafetensorsError(f"{source} is damaged: {size - position} bytes follow the last tensor")
    return entries, metadata


def _entry(name: str, info: Any, start: int, source: str) -> Entry:
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
    needed = math.prod(shape) * DTYPES[code][2]
    if offsets[1] - offsets[0] != needed:
        raise SafetensorsError(f"{source}: tensor {name!r} ({code} of shape {tuple(shape)}) needs {needed} bytes, "
                               f"but its offsets span {offsets[1] - offsets[0]}")
    return Entry(code, tuple(shape), start + offsets[0], start + offsets[1])
