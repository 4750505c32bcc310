"""Files that hold secrets: private from the first byte, replaced atomically."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create *path* (and parents) as 0700 and tighten it if it already exists."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if (path.stat().st_mode & 0o777) != PRIVATE_DIR:
        path.chmod(PRIVATE_DIR)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete temp files of :func:`atomic_write_private` for *path* left by a process that
    died mid-write (its pid no longer runs); a live writer's file is left alone."""
    removed = []
    prefix, suffix = f".{path.name}.", ".tmp"
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
                continue
            pid = entry.name[len(prefix) : -len(suffix)]
            if pid.isdigit() and int(pid) > 0 and _running(int(pid)):
                continue
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def atomic_write_private(path: Path, data: bytes) -> None:
    """Replace *path* with *data*: temp file created 0600, fsync, rename, fsync the directory.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    tmp = _temp_name(path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class NotAPlainFile(OSError):
    """A secret's file is a link, a device, a FIFO or has a second name."""


def read_plain_file(path: Path, limit: int, *, one_name: bool = False) -> bytes:
    """The bytes of the regular file *path* (at most *limit*), never read through a link:
    root reads files in directories a service user owns, who could point a link at
    ``/etc/shadow``, or at another service's secret, for root to read and seal.
    ``FileNotFoundError`` when it is absent; :class:`NotAPlainFile` when it is a link or
    not a regular file, larger than *limit*, or (with *one_name*) hard-linked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError:  # ELOOP: the name is a link
        raise NotAPlainFile(f"{path} is not a plain file (a link?)") from None
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode) or (one_name and found.st_nlink != 1):
            raise NotAPlainFile(f"{path} is not a plain file (a link?)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotAPlainFile(f"{path} is larger than a secret's file")
    return data
