"""A Maildir++ tree on disk: folders, message files, flags. Synchronous; no parsing.

Why not ``mailbox.Maildir``: on Python 3.11 it has no public way to read or change a
message's flags without rewriting the message (``__setitem__`` re-serialises it, which
changes the bytes of malformed mail), and it follows symlinks. Here reads only ever
``open`` files read-only, and writes are single ``rename`` calls.

Symlinks are never followed below the configured root: every directory and file is
opened relative to its parent's descriptor with ``O_NOFOLLOW``. In isolated mode the
daemon user can read its own secrets while the agent may be able to write into the
person's Maildir; a planted ``cur/x -> /var/lib/airlock/...`` link must not turn
``get_message`` into a way to read them. Non-regular files (FIFOs, devices) are skipped.

Layout: INBOX is the root; a folder ``Archive`` is the directory ``.Archive`` with its
own ``cur/``, ``new/``, ``tmp/`` (Maildir++; ``.Lists.Python`` is the folder
``Lists.Python``). A message's key is its file name up to ``:``; the info after
``:2,`` holds the flags in ASCII order (``S`` = seen). Files in ``new/`` carry no info.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from airlock.plugin import ConnectorError, NotFound
from airlock_mail.model import INBOX

__all__ = ["KEY_PATTERN", "Entry", "MaildirStore", "is_maildir"]

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._,=+\-\\]{0,199}")
"""What Maildir deliverers put in a key (``1740744000.M552847P1.host,S=123``); a file
named otherwise was not delivered there and is not listed (its name could not be an id)."""

Subdir = Literal["cur", "new"]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_HEAD_CHUNK = 8192
# A directory whose mtime is this recent may still change within the same timestamp tick
# (the kernel's clock for mtimes is coarse), so its cached count is not trusted yet.
_SETTLED_NS = 1_000_000_000
_DirStamp = tuple[int, int, int]  # device, inode, mtime in ns
_Stamps = tuple[tuple[int, int], _DirStamp, _DirStamp]
"""A folder's directory (device, inode: it changes with every message file Dovecot
keeps there), its ``cur/`` and its ``new/``."""


def is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


@dataclass(frozen=True)
class Entry:
    """One message file as listed: enough to sort, filter and find it again."""

    key: str
    subdir: Subdir
    name: str
    mtime: float
    size: int

    @property
    def flags(self) -> str:
        return _flags(self.subdir, self.name)

    @property
    def seen(self) -> bool:
        return "S" in self.flags


class MaildirStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._unread: dict[str, tuple[_Stamps, int]] = {}
        self._paths: dict[str, tuple[str, str, str]] = {}

    def check(self) -> None:
        if not is_maildir(self.root):
            raise ConnectorError(
                f"{self.root} is not a Maildir (it needs cur/, new/ and tmp/)",
                hint="check the service's path in config.yaml",
            )

    # ------------------------------------------------------------------ folders

    def folder_names(self) -> list[str]:
        """INBOX, then every Maildir++ subfolder that is a real directory, sorted."""
        names = []
        with self._root() as root_fd, os.scandir(root_fd) as found:
            for item in found:
                if (
                    item.name.startswith(".")
                    and item.name not in (".", "..")
                    and item.is_dir(follow_symlinks=False)
                    and self._has_mail_dirs(root_fd, item.name)
                ):
                    names.append(item.name[1:])
        return [INBOX, *sorted(names)]

    def _has_mail_dirs(self, root_fd: int, dirname: str) -> bool:
        try:
            with _opendir(dirname, root_fd) as fd:
                return all(stat.S_ISDIR(os.stat(s, dir_fd=fd, follow_symlinks=False).st_mode)
                           for s in ("cur", "new"))  # fmt: skip
        except OSError:
            return False

    # ------------------------------------------------------------------ messages

    def entries(self, folder: str) -> list[Entry]:
        found: list[Entry] = []
        with self._folder(folder) as folder_fd:
            for subdir in ("cur", "new"):
                with _opendir(subdir, folder_fd) as fd, os.scandir(fd) as items:
                    found.extend(_entry(item, subdir) for item in items if _is_message(item))
        return found

    def unread_count(self, folder: str) -> int:
        """Messages without the S flag, counted from file names alone.

        Adding, removing or renaming a message (which is how flags change) updates its
        directory's mtime, so while both ``cur/`` and ``new/`` keep theirs the last count
        stands: an agent polling for new mail costs two ``fstat`` calls, not a listing.
        """
        with (
            self._folder(folder) as folder_fd,
            _opendir("cur", folder_fd) as cur_fd,
            _opendir("new", folder_fd) as new_fd,
        ):
            stamps = (_dir_stamp(folder_fd)[:2], _dir_stamp(cur_fd), _dir_stamp(new_fd))
            cached = self._unread.get(folder)
            if cached is not None and cached[0] == stamps:
                return cached[1]
            count = _count_unseen(cur_fd, "cur") + _count_unseen(new_fd, "new")
        if all(time.time_ns() - stamp[2] > _SETTLED_NS for stamp in stamps[1:]):
            self._unread[folder] = (stamps, count)
        return count

    def cached_unread_count(self, folder: str) -> int | None:
        """The last count of *folder* while neither ``cur/`` nor ``new/`` changed since;
        None when it must be counted (again) by :meth:`unread_count`.

        Three ``stat`` calls, no descriptor and no listing: cheap enough to run on the
        event loop, so polling an unchanged folder skips the worker thread (whose
        hand-off costs several times the check). Only a folder counted before has a
        count, so its name already passed :meth:`folder_names`. The count is given only
        while the folder's directory, its ``cur/`` and its ``new/`` are the very
        directories (device and inode) that :meth:`unread_count` opened without
        following a symlink, and ``cur/`` and ``new/`` unchanged since (their mtime).
        None of the three is followed if it is a symlink (the root, INBOX's directory,
        is the configured path and may be one), and each must be a directory: a symlink
        planted (even one given a freed directory's inode number) or a folder replaced
        is counted again that way, and refused.
        """
        cached = self._unread.get(folder)
        if cached is None:
            return None
        stamps, count = cached
        base, cur, new = self._stamp_paths(folder)
        try:
            folder_stamp = _path_stamp(base, follow=folder == INBOX)
            if (folder_stamp[:2], _path_stamp(cur), _path_stamp(new)) != stamps:
                return None
        except OSError:
            return None  # unread_count opens it again and says what is wrong
        return count

    def _stamp_paths(self, folder: str) -> tuple[str, str, str]:
        """The paths of *folder*'s directory, its ``cur/`` and its ``new/`` (built once)."""
        found = self._paths.get(folder)
        if found is None:
            base = self.root if folder == INBOX else self.root / ("." + folder)
            found = self._paths[folder] = (str(base), str(base / "cur"), str(base / "new"))
        return found

    def find(self, folder: str, key: str) -> Entry:
        for entry in self.entries(folder):
            if entry.key == key:
                return entry
        raise NotFound(
            f"no message {key!r} in folder {folder!r}",
            hint="take ids and folders from list_messages or search",
        )

    def read(self, folder: str, entry: Entry, *, limit: int) -> bytes:
        """The first *limit* bytes of the message file."""
        with self._file(folder, entry) as fd:
            return _read_up_to(fd, limit)

    def read_head(self, folder: str, entry: Entry, *, limit: int) -> bytes:
        """The header block (up to the first empty line), at most *limit* bytes."""
        with self._file(folder, entry) as fd:
            data = b""
            while len(data) < limit:
                chunk = os.read(fd, _HEAD_CHUNK)
                if not chunk:
                    break
                data += chunk
                if b"\n\n" in data or b"\r\n\r\n" in data:
                    break
            return data[:limit]

    # ------------------------------------------------------------------ writes

    def set_seen(self, folder: str, entry: Entry, *, seen: bool) -> bool:
        """Add or remove the S flag by renaming; a file in new/ moves to cur/ to carry
        it. Returns whether anything changed."""
        if entry.seen == seen:
            return False
        flags = set(entry.flags) | {"S"} if seen else set(entry.flags) - {"S"}
        new_name = f"{entry.key}:2,{''.join(sorted(flags))}"
        with (
            self._folder(folder) as fd,
            _opendir(entry.subdir, fd) as src,
            _opendir("cur", fd) as dst,
        ):
            _rename(entry.name, src, new_name, dst)
        return True

    def move(self, folder: str, entry: Entry, to_folder: str) -> None:
        """Move the file, name and flags unchanged, to the same subdir of *to_folder*."""
        with (
            self._folder(folder) as src_fd,
            self._folder(to_folder) as dst_fd,
            _opendir(entry.subdir, src_fd) as src,
            _opendir(entry.subdir, dst_fd) as dst,
        ):
            _rename(entry.name, src, entry.name, dst)

    # ------------------------------------------------------------------ descriptors

    @contextmanager
    def _root(self) -> Iterator[int]:
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ConnectorError(f"cannot open the Maildir {self.root}: {exc.strerror}") from None
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _folder(self, folder: str) -> Iterator[int]:
        """A descriptor of *folder*'s directory; only names listed by folder_names()."""
        if folder == INBOX:
            with self._root() as fd:
                yield fd
            return
        if folder not in self.folder_names():
            raise NotFound(f"no folder {folder!r}", hint="list_folders shows the folders")
        with self._root() as root_fd, _opendir("." + folder, root_fd) as fd:
            yield fd

    @contextmanager
    def _file(self, folder: str, entry: Entry) -> Iterator[int]:
        with self._folder(folder) as folder_fd, _opendir(entry.subdir, folder_fd) as dir_fd:
            try:
                fd = os.open(entry.name, _FILE_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                raise NotFound(
                    f"message {entry.key!r} in {folder!r} is gone (moved or deleted meanwhile)"
                ) from None
            except OSError as exc:
                raise ConnectorError(f"cannot read message {entry.key!r}: {exc.strerror}") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise ConnectorError(f"message {entry.key!r} is not a regular file")
                yield fd
            finally:
                os.close(fd)


@contextmanager
def _opendir(name: str, parent_fd: int) -> Iterator[int]:
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        raise ConnectorError(
            f"cannot open Maildir directory {name!r}: {exc.strerror} "
            "(symlinks inside a Maildir are not followed)"
        ) from None
    try:
        yield fd
    finally:
        os.close(fd)


def _dir_stamp(fd: int) -> _DirStamp:
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino, info.st_mtime_ns)


def _path_stamp(path: str, *, follow: bool = False) -> _DirStamp:
    """:func:`_dir_stamp` of the directory at *path*; ``NotADirectoryError`` for anything
    else (a symlink, unless *follow*)."""
    info = os.stat(path, follow_symlinks=follow)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(path)
    return (info.st_dev, info.st_ino, info.st_mtime_ns)


def _flags(subdir: Subdir, name: str) -> str:
    if subdir == "new" or ":2," not in name:
        return ""
    return name.split(":2,", 1)[1]


def _count_unseen(fd: int, subdir: Subdir) -> int:
    with os.scandir(fd) as items:
        return sum(
            1 for item in items if _is_message(item) and "S" not in _flags(subdir, item.name)
        )


def _is_message(item: os.DirEntry[str]) -> bool:
    key = item.name.split(":", 1)[0]
    return bool(KEY_PATTERN.fullmatch(key)) and item.is_file(follow_symlinks=False)


def _entry(item: os.DirEntry[str], subdir: Subdir) -> Entry:
    info = item.stat(follow_symlinks=False)
    return Entry(item.name.split(":", 1)[0], subdir, item.name, info.st_mtime, info.st_size)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _rename(name: str, src_fd: int, new_name: str, dst_fd: int) -> None:
    """Rename without ever replacing an existing file (rename(2) would, silently)."""
    try:
        os.stat(new_name, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        raise ConnectorError(f"cannot move {name!r}: {new_name!r} already exists there")
    try:
        os.rename(name, new_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except FileNotFoundError:
        raise NotFound(f"message file {name!r} is gone (moved or deleted meanwhile)") from None
    except OSError as exc:
        raise ConnectorError(f"cannot move {name!r}: {exc.strerror}") from None
