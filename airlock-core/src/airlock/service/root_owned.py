"""Whether only root can change a program: what isolated mode's daemons run must be.

The daemons run an interpreter and import from its ``sys.path``. Anyone who can change a
file there, or a folder on the way to it, runs code as the daemon's user: with the TOTP
secret, the audit key, the vault. The person's own uid must not (an agent may run as
it), so a program in the person's home (a venv, ``uv tool``, ``pipx``) is not run as
it is, even when the service user can read it: a copy goes to ``/opt/airlock/venv``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path


def _changeable(path: Path) -> bool:
    """Another user than root may replace or change *path* itself."""
    found = path.lstat()
    if found.st_uid != os.geteuid():
        return True
    if stat.S_ISLNK(found.st_mode):
        return False  # a link's own bits mean nothing; its folder and target are checked
    writable = found.st_mode & 0o022
    # A sticky folder (/tmp) lets others add entries, never replace root's.
    return bool(writable) and not (stat.S_ISDIR(found.st_mode) and found.st_mode & stat.S_ISVTX)


def _on_the_way(path: Path) -> Iterable[Path]:
    """*path*, the folders above it, and the same for where a link in it leads."""
    yield from (path, *path.parents)
    real = path.resolve()
    if real != path:
        yield from (real, *real.parents)


def changeable_above(path: Path) -> Path | None:
    """*path* or a folder above it (or above where it leads) if another user than root
    could change it; None if none."""
    return next((p for p in _on_the_way(path) if p.exists() and _changeable(p)), None)


def changeable_by_others(paths: Iterable[Path]) -> Path | None:
    """The first file or folder another user than root could change: one of *paths*, a
    folder above one, or anything in one of them (at any depth); None if there is none."""
    seen: set[Path] = set()

    def first(candidates: Iterable[Path]) -> Path | None:
        for candidate in candidates:
            if candidate not in seen:
                seen.add(candidate)
                if candidate.exists() and _changeable(candidate):
                    return candidate
        return None

    for path in paths:
        found = first(_on_the_way(path))
        if found is not None:
            return found
        if not path.is_dir():
            continue
        for folder, folders, files in os.walk(path):
            for name in [*folders, *files]:
                entry = Path(folder) / name
                found = first([entry, *(_on_the_way(entry) if entry.is_symlink() else ())])
                if found is not None:
                    return found
    return None


def not_roots_own(python: Path) -> str | None:
    """What another user than root could change of what *python* runs (the interpreter,
    every folder on its isolated ``sys.path``); None when only root can."""
    try:
        done = subprocess.run(
            [str(python), "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        entries = [Path(p) for p in json.loads(done.stdout) if p]
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"{python}: its import path could not be read ({type(exc).__name__})"
    found = changeable_by_others([python, *entries])
    if found is None:
        return None
    return f"{found} can be changed by a user other than root"
