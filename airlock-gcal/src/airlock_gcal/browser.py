"""Opening Google's sign-in address in the person's browser without putting it on a
command line.

The address carries this run's ``state`` and PKCE challenge. A browser started with it as
an argument shows it in ``/proc/PID/cmdline`` to every local user, who could start a
sign-in of their own with that challenge and answer the loopback address first, with
that state and a code for *their* Google account: Airlock would keep a grant to their
calendar, and the agent would read what they put there and write the person's plans into
it. So the browser is given a page in a private folder (0700, the page 0600, under the
home folder, where a sandboxed browser can read it) that forwards to the address; the
folder goes when the command ends. The folder goes only where no other user can move it
aside and put a page of theirs in its place: ``~/.cache`` or the temporary folder, if it
and every folder above it are ours or root's, and writable by nobody else or sticky.
"""

from __future__ import annotations

import html
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["opened_privately"]

PAGE = """<!doctype html>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0; url={url}">
<title>Airlock: sign in with Google</title>
<p><a href="{url}">Continue to Google's sign-in</a></p>
"""


@contextmanager
def opened_privately(
    open_url: Callable[[str], object] | None,
) -> Iterator[Callable[[str], None] | None]:
    """A function that opens an address through a private page with *open_url* (e.g.
    ``webbrowser.open``; None: no browser, None given back); the page's folder is removed
    on leaving."""
    if open_url is None:
        yield None
        return
    base = _private_base()
    if base is None:  # the address is printed: the person opens it by hand
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="airlock-sign-in-", dir=base))
    try:

        def open_page(url: str) -> None:
            page = folder / "sign-in.html"
            fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(PAGE.format(url=html.escape(url, quote=True)))
            open_url(page.as_uri())

        yield open_page
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _private_base() -> str | None:
    """``~/.cache`` (made 0700 if missing), else the system's temporary folder: the
    first no other user can change the page's folder in; None if neither."""
    cache = Path.home() / ".cache"
    with suppress(OSError):
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    for base in (str(cache), tempfile.gettempdir()):
        real = os.path.realpath(base)
        if _kept_from_others(real):
            return real
    return None


def _kept_from_others(path: str) -> bool:
    """Whether no other user (root aside) can rename or replace what *path* (a real
    path) holds: it and every folder above it belong to us or root and are either not
    writable by others, or sticky (as ``/tmp``: each may move only its own). A folder
    another user planted where ``.cache`` belongs (in a home others may write in) is
    theirs: they could move the page's folder aside and put a page of theirs there."""
    me = os.getuid()
    current = Path(path)
    for folder in (current, *current.parents):
        try:
            st = os.lstat(folder)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (me, 0):
            return False
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return False
    return True
