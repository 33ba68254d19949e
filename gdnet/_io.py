"""Opening the files gdnet reads (IDX data, checkpoints), and reading them in bounded pieces.

A path may name anything: a character device such as /dev/zero never ends, and a FIFO blocks
until a writer comes. Readers take regular files only and never read more than the file's own
header says it holds (plus one byte, to notice trailing data), so a crafted file costs at most
the memory its header claims.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import BinaryIO, Iterator

CHUNK_BYTES = 1 << 16

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


@contextlib.contextmanager
def open_regular(path: str | os.PathLike, error: type[Exception]) -> Iterator[tuple[BinaryIO, int]]:
    """``with open_regular(path, SomeError) as (file, size):`` a regular file (symbolic links
    followed) open for binary reading, and its size in bytes.

    Raises:
        error: ``path`` is a directory, a device, a FIFO or a socket (the message names which).
        FileNotFoundError, PermissionError: as ``open``.
    """
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it changes
    # nothing for a regular file
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{os.fspath(path)} is {_kind(info.st_mode)}, not a regular file; expected a file "
                        "holding the data")
        file = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        yield file, info.st_size


def read_at_most(stream: BinaryIO, limit: int, buffer: bytearray | None = None) -> bytearray:
    """Up to ``limit`` bytes of ``stream`` (fewer where it ends first), read in chunks and
    appended to ``buffer`` (a new one by default), which is returned: the memory taken is what
    the stream holds, never more than ``limit``."""
    buffer = bytearray() if buffer is None else buffer
    wanted = len(buffer) + limit
    while len(buffer) < wanted:
        chunk = stream.read(min(CHUNK_BYTES, wanted - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer
