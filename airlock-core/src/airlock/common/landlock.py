"""Hide paths from this process and everything it starts, with the kernel's Landlock.

Landlock (Linux 5.13+) lets any process, without privileges, give up file access for
itself and its descendants for good; nothing it runs can take it back. Its rules only
*allow*, each for a file or a whole tree, so "everything but these paths" is built from
the ground up: for every folder on the way from ``/`` to a hidden path, each entry that
is neither hidden nor on the way to a hidden path is allowed whole. What that leaves out:

* a hidden path, and whatever is beneath it: not read, written, run, listed or replaced;
* a *new* entry made directly in a folder on the way (``/``, ``/home``, your home, ...)
  after the rules were set: existing entries there are allowed, creating new ones is not;
* listing a folder's names is allowed everywhere (the hidden ones' too: names only).

Symbolic links are not rules of their own: the kernel judges the path they lead to. A
link on the way to a hidden path is hidden as an entry (it cannot be replaced).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
"""The syscalls' numbers, the same on every architecture (the generic table)."""
_VERSION = 1  # LANDLOCK_CREATE_RULESET_VERSION: ask for the ABI version
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15


class Unavailable(OSError):
    """The kernel has no Landlock, or it is switched off: nothing was hidden."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 without Landlock."""
    found = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    return max(0, int(found))


def rights(abi: int) -> tuple[int, int]:
    """Every right this ABI handles: (on a folder and beneath it, on a file)."""
    on_folder = (1 << 13) - 1  # ABI 1: execute ... make_sym
    on_file = EXECUTE | WRITE_FILE | READ_FILE
    if abi >= 2:
        on_folder |= REFER
    if abi >= 3:
        on_folder |= TRUNCATE
        on_file |= TRUNCATE
    if abi >= 5:
        on_folder |= IOCTL_DEV
        on_file |= IOCTL_DEV
    return on_folder, on_file


_MAX_LINKS = 40  # as the kernel's own limit on links followed in one lookup


def _reached(path: Path) -> set[Path]:
    """The path the kernel reaches for *path* (links resolved), and every link followed
    on the way, each as the entry that holds it: hiding a link keeps it from being
    replaced by one that points elsewhere (a config kept with dotfiles is such a link)."""
    found: set[Path] = set()
    here, pending = Path("/"), list(Path(path).absolute().parts[1:])
    followed = 0
    while pending:
        part = pending.pop(0)
        step = here / part
        if part == "..":
            here = here.parent
        elif part != "." and os.path.islink(step):
            followed += 1
            if followed > _MAX_LINKS:
                raise OSError(errno.ELOOP, f"{path}: too many levels of symbolic links")
            found.add(step)
            target = Path(os.readlink(step))
            if target.is_absolute():
                here = Path("/")
            pending[:0] = target.parts[1:] if target.is_absolute() else target.parts
        elif part != ".":
            here = step
    found.add(here)
    return found


def _outermost(paths: Iterable[Path]) -> set[Path]:
    """The paths as the kernel sees them (with the links on the way), less those beneath
    another."""
    return _top({reached for p in paths for reached in _reached(p)})


def _top(paths: set[Path]) -> set[Path]:
    return {p for p in paths if not any(q in p.parents for q in paths)}


def sparing(hidden: Iterable[Path], keep: Path) -> list[Path]:
    """*hidden* with *keep* carved out: a hidden folder that holds *keep* is hidden entry
    by entry instead, all but the one on the way to *keep* (as they are now; an entry made
    there later is out of reach anyway, being new on the way). The paths are as the
    kernel sees them: give them to :func:`hide` with ``spare`` rather than as paths (a
    link among them would be followed again)."""
    return sorted(_hidden(hidden, keep))


def _hidden(paths: Iterable[Path], spare: Path | None) -> set[Path]:
    """What :func:`hide` hides: *paths* as the kernel sees them, less *spare*'s way."""
    hidden = _outermost(paths)
    return hidden if spare is None else _top(_spared(hidden, spare))


def _spared(hidden: set[Path], keep: Path) -> set[Path]:
    keep = Path(os.path.realpath(keep))
    found: set[Path] = set()
    for path in hidden:
        if path == keep or path not in keep.parents:
            found.add(path)
            continue
        way = [path]
        while way:
            folder = way.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    child = Path(entry.path)
                    if child == keep:
                        continue
                    if child in keep.parents:
                        way.append(child)
                    else:
                        found.add(child)
    return found


def allowed_entries(
    hidden: Iterable[Path], *, spare: Path | None = None
) -> list[tuple[Path, bool]]:
    """Every path to allow whole so that all but *hidden* (less *spare*'s way) stays
    reachable (see above), each with whether it is a folder."""
    hide = _hidden(hidden, spare)
    on_the_way = {folder for path in hide for folder in path.parents}
    allowed: list[tuple[Path, bool]] = []
    for folder in sorted(on_the_way):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # not listable: its entries stay out (the safe side)
        for entry in entries:
            path = Path(entry.path)
            if path in hide or path in on_the_way or entry.is_symlink():
                continue
            allowed.append((path, entry.is_dir(follow_symlinks=False)))
    return allowed


def hide(paths: Iterable[Path], *, spare: Path | None = None) -> None:
    """From now on, this process and its descendants reach nothing of *paths* (but for
    *spare* and what is beneath it, when given: see :func:`sparing`).

    Raises :class:`Unavailable` when the kernel cannot do it (nothing changed then), and
    ``OSError`` for any other failure."""
    libc = _libc()
    abi = abi_version()
    if abi <= 0:
        raise Unavailable(errno.EOPNOTSUPP, "Landlock is not available on this kernel")
    on_folder, on_file = rights(abi)
    attr = _RulesetAttr(on_folder)
    ruleset = int(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0))
    if ruleset < 0:
        raise _error("landlock_create_ruleset")
    try:
        _allow(libc, ruleset, Path("/"), READ_DIR)  # names only, everywhere
        for path, folder in allowed_entries(paths, spare=spare):
            try:
                _allow(libc, ruleset, path, on_folder if folder else on_file)
            except FileNotFoundError:
                continue  # gone since it was listed
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _error("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise _error("landlock_restrict_self")
    finally:
        os.close(ruleset)


def _allow(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise _error(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _error(call: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}")
