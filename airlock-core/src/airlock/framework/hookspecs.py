"""The hooks a plugin may implement (see docs/plugins.md). Markers and specs only.

Every hook is called with keyword arguments and every implementation is called (none is
``firstresult``). Registration hooks return components; they must not do I/O, start
threads or read credentials: they run for every ``airlock`` command, including ``--help``.
Hooks evolve only by adding arguments, so an implementation may accept fewer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from airlock.framework.connectors import Connector
    from airlock.framework.notifiers import Notifier
    from airlock.framework.policies import Policy

PROJECT = "airlock"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_connectors() -> Iterable[type[Connector] | str]:
    """Return the ``Connector`` classes this plugin provides, each as a reference
    ``"ID = module:Class"`` (imported only when a command uses that connector) or as the
    class itself (imported for every command that lists components).

    Every implementation is called; the results are merged. Connector ids (``name``) must
    be unique across all plugins: a clash is an error naming both distributions. Import
    heavy libraries inside the connector's methods, not here. No I/O.
    """


@hookspec
def register_notifiers() -> Iterable[type[Notifier] | str]:
    """Return the ``Notifier`` classes this plugin provides, as references
    ``"ID = module:Class"`` or classes (see ``register_connectors``).

    Every implementation is called; ids must be unique across plugins. No I/O: a notifier
    connects only when the daemon opens it.
    """


@hookspec
def register_policies() -> Iterable[Policy | str]:
    """Return ``Policy`` objects to consult on every request and operation, or references
    ``"ID = module:Class"`` to a policy class whose instances take no arguments (a fresh
    one is made when the daemon loads its policies).

    Every implementation is called and every policy is evaluated (never first-result):
    any DENY wins, then ASK, then ALLOW; ``None`` from ``check`` abstains. A policy must
    not raise to refuse; it returns a DENY verdict with a reason. No I/O here.
    """


@hookspec
def register_commands(app: Any) -> None:
    """Add sub-commands to the ``airlock`` typer *app* (e.g. ``airlock gcal auth``).

    Every implementation is called while the CLI is built, for ``--help`` and every
    command that is not built in: add commands only; import heavy libraries inside the
    command functions.
    Command names must not shadow built-in ones.
    """
