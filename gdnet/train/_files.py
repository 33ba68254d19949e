"""Writing files so that a crash never leaves a partial file under the final name."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import Iterable

# ".<name>.<pid>.<8 hex digits>.tmp", as atomic_write names its temporary files
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp")
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


def atomic_write(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` atomically: a temporary file in the same directory, flushed
    and fsynced, renamed over ``path``, then the directory fsynced. A crash at any point leaves
    either the old file or the new one under ``path``, never a mixture."""
    path = Path(path)
    directory = existing_parent(path)
    remove_stale_temporaries(directory)
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
    STALE_AFTER_S seconds. Returns the files removed; never raises (a save goes on either way).

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
            if match is None:
                continue
            pid = int(match["pid"])
            with contextlib.suppress(OSError):
                if (pid == os.getpid() or _alive(pid) or not entry.is_file(follow_symlinks=False)
                        or now - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S):
                    continue
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
