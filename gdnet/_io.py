"""The files gdnet reads and writes (IDX data, downloads, checkpoints, logs, plots).

Reading: a path may name anything: a character device such as /dev/zero never ends, and a
FIFO blocks until a writer comes. Readers take regular files only and never read more than the
file's own header says it holds (plus one byte, to notice trailing data), so a crafted file
costs at most the memory its header claims.

Writing: every file gdnet writes goes through ``atomic_write``, so a crash never leaves a
partial file under the final name, and the temporary files of writers that died are removed by
the next write into the same folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

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


def reopening_path(file: BinaryIO, path: str | os.PathLike) -> str:
    """A path that opens the very file ``file`` has open, even where ``path`` has been replaced
    since it was checked (``/proc/self/fd/N`` on Linux, ``/dev/fd/N`` on macOS and the BSDs),
    for a library that opens paths only; ``path`` itself where the platform has neither."""
    descriptor = file.fileno()
    for candidate in (f"/proc/self/fd/{descriptor}", f"/dev/fd/{descriptor}"):
        if os.path.exists(candidate):
            return candidate
    return os.fspath(path)


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


# -- writing ------------------------------------------------------------------------------------
# ".<name>.<pid>.<8 hex digits>.tmp", as atomic_write names its temporary files
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp")
# ".<name>.<8 characters>.part": tempfile.mkstemp's names, which earlier versions of the IDX
# writer and the downloads used; they hold no process id, so only their age marks them stale
_UNOWNED_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part")
# A process id means nothing on another machine sharing the folder (a network file system): a
# temporary file is left alone until it has not changed for this long, whoever wrote it.
STALE_AFTER_S = 600.0


def existing_parent(path: str | os.PathLike) -> Path:
    """The folder ``path`` goes in; FileNotFoundError naming it when it does not exist."""
    parent = Path(path).absolute().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {os.fspath(path)!r}: the directory {str(parent)!r} does not exist "
                                "(create it first)")
    return parent


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_file(path) as temporary:`` write the new file at ``temporary`` (created
    empty, in the same directory), for writers that take a path; when the block ends, the file
    is fsynced and renamed over ``path``, then the directory fsynced. A crash at any point
    leaves either the old file or the new one under ``path``, never a mixture; an exception
    leaves the old one and removes the temporary file.

    Raises:
        FileNotFoundError: the directory of ``path`` does not exist (naming it).
    """
    path = Path(path)
    directory = existing_parent(path)
    remove_stale_temporaries(directory)
    temporary = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open (not mkstemp) so the file gets the usual permissions under the umask
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    permissions = stat.S_IMODE(os.stat(temporary).st_mode)
    try:
        yield temporary
        # a writer may replace the file instead of writing into it (safetensors writes a new
        # one, readable by its owner only): the file gets the permissions made above back
        if stat.S_IMODE(os.stat(temporary).st_mode) != permissions:
            os.chmod(temporary, permissions)
        descriptor = os.open(temporary, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(descriptor)  # the data are on disk before the rename makes them the file
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def atomic_write(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` atomically (see ``atomic_file``); an exception raised while
    the chunks are made (a failed checksum, say) leaves the old file."""
    with atomic_file(path) as temporary, open(temporary, "wb") as file:
        for chunk in chunks:
            file.write(chunk)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (where the platform lets a directory be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # OverflowError: above any process id
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files that ``atomic_write`` calls left in ``directory`` when their
    process died before the rename (a kill, a power cut): files named
    ``.<name>.<pid>.<hex>.tmp`` whose process no longer runs and which have not changed for
    STALE_AFTER_S seconds, and ``.<name>.<8 characters>.part`` files (the temporary files of
    earlier gdnet versions' IDX writes and downloads) that have not changed for as long.
    Returns the files removed; never raises (a write goes on either way).

    Only on POSIX systems, where ``os.kill(pid, 0)`` asks whether a process exists (on Windows
    it would end the process).
    """
    if os.name != "posix":
        return []
    removed = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match is None and _UNOWNED_TEMPORARY.fullmatch(entry.name) is None:
                continue
            pid = None if match is None else int(match["pid"])
            with contextlib.suppress(OSError):
                if (pid is not None and (pid == os.getpid() or _alive(pid))
                        or not entry.is_file(follow_symlinks=False)
                        or now - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S):
                    continue
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
