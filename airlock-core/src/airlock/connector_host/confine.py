"""Programs the connector host starts (an MCP proxy's ``command`` server) run without
Airlock's own files: ``python -I -m airlock.connector_host.confine HIDDEN... -- ARGV``
hides those paths with Landlock (:mod:`airlock.common.landlock`), then becomes *ARGV*.

The host hides the same from itself (:func:`confine_host`), all but its own folder.

Such a program runs as the host's user, which owns the service credentials' vault and
its key; without this it could read every service's credentials, and in personal mode
Airlock's TOTP secret and audit key too. What it is kept from:

* the host's vault and key (``vault.enc``, ``vault.key``, ``vault.key.sealed``);
* in personal mode, Airlock's data folder (TOTP secret, audit log and key, state) and
  its config file (so it cannot widen a policy either).

A kernel without Landlock (before Linux 5.13, or with it switched off) runs the program
unconfined, saying so on its stderr, which the daemon log shows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

HIDDEN: list[Path] = []
"""What the host hides from the programs it starts (set once, as it starts)."""


def confined_command(argv: Sequence[str]) -> list[str]:
    """*argv* wrapped so that it runs without Airlock's own files (see the module); as it
    is when there is nothing to hide (a connector run in-process, as in its own tests)."""
    if not HIDDEN:
        return list(argv)
    hidden = [str(path) for path in HIDDEN]
    return [sys.executable, "-I", "-m", __name__, *hidden, "--", *argv]


def confine_host(hidden: Sequence[Path], own: Path) -> str | None:
    """Hide *hidden* from the connector host itself, less its own folder *own* (in personal
    mode, Airlock's data folder holds it): a parser bug that takes the host over cannot
    read the TOTP secret, the audit key or the state, nor change the config. What went
    wrong, if anything (the host then runs unconfined)."""
    if not hidden:
        return None
    from airlock.common.files import ensure_private_dir
    from airlock.common.landlock import hide

    ensure_private_dir(own)  # made first: a new folder on the way is out of reach after
    try:
        hide(hidden, spare=own)
    except OSError as exc:
        return f"{exc.strerror or exc}: the connector host runs unconfined"
    return None


def main(args: list[str]) -> int:
    if "--" not in args or args.index("--") == len(args) - 1:
        sys.stderr.write("usage: python -m airlock.connector_host.confine PATH... -- ARGV\n")
        return 2
    cut = args.index("--")
    hidden, argv = [Path(p) for p in args[:cut]], args[cut + 1 :]
    from airlock.common.landlock import Unavailable, hide

    try:
        hide(hidden)
    except Unavailable as exc:
        sys.stderr.write(f"airlock: {exc.strerror}: {argv[0]} runs unconfined\n")
    except OSError as exc:  # fail closed: the program does not run
        sys.stderr.write(f"airlock: cannot hide Airlock's files from {argv[0]}: {exc}\n")
        return 126
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the argv the service was configured with
    except OSError as exc:
        sys.stderr.write(f"airlock: cannot run {argv[0]}: {exc.strerror}\n")
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
