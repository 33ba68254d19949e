"""Writing files so that a crash never leaves a partial file under the final name."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterable


def existing_parent(path: str | os.PathLike) -> Path:
    """The folder ``path`` goes in; FileNotFoundError naming it when it does not exist."""
    parent = Path(path).absolute().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {os.fspath(path)!r}: the directory {str(parent)!r} does not exist "
                                "(create it first)")
    return parent


def atomic_write(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` atomically: a temporary file in the same directory, flushed
    and fsynced, renamed over ``path``, then the directory fsynced. A crash at any point leaves
    either the old file or the new one under ``path``, never a mixture."""
    path = Path(path)
    directory = existing_parent(path)
    temporary = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open (not mkstemp) so the file gets the usual permissions under the umask
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (where the platform lets a directory be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
