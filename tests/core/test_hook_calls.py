"""Every hook core declares is called by core, and what a plugin returns from it arrives.

A probe plugin implements every hook; for each hook, the core function that calls it in
the daemon or the CLI runs, and the probe must have been called and its component (or
command) must be in the answer. A new hook fails ``test_every_hook_has_a_core_call``
until a call is added here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import typer
from tests.core.test_docs import hook_names

from airlock.cli import build_app
from airlock.framework.connectors import Connector
from airlock.framework.hookspecs import hookimpl
from airlock.framework.notifiers import Notifier
from airlock.framework.plugins import (
    AirlockPluginManager,
    get_connectors,
    get_notifiers,
    get_plugin_manager,
    get_policies,
)
from airlock.framework.policies import PolicyContext, Verdict

PROBE = "hook-probe"


class ProbeConnector(Connector):
    name = PROBE


class ProbeNotifier(Notifier):
    name = PROBE


class ProbePolicy:
    name = PROBE

    def check(self, ctx: PolicyContext) -> Verdict | None:
        return None


class EveryHook:
    """Implements every hook and records which were called."""

    def __init__(self) -> None:
        self.called: list[str] = []

    @hookimpl
    def register_connectors(self) -> list[type[Connector]]:
        self.called.append("register_connectors")
        return [ProbeConnector]

    @hookimpl
    def register_notifiers(self) -> list[type[Notifier]]:
        self.called.append("register_notifiers")
        return [ProbeNotifier]

    @hookimpl
    def register_policies(self) -> list[ProbePolicy]:
        self.called.append("register_policies")
        return [ProbePolicy()]

    @hookimpl
    def register_commands(self, app: Any) -> None:
        self.called.append("register_commands")
        app.command(PROBE)(lambda: None)


def _commands(pm: AirlockPluginManager) -> set[str]:
    command = typer.main.get_command(build_app(pm))
    return set(getattr(command, "commands", {}))


CORE_CALLS: dict[str, Callable[[AirlockPluginManager], bool]] = {
    "register_connectors": lambda pm: get_connectors(pm).get(PROBE) is ProbeConnector,
    "register_notifiers": lambda pm: get_notifiers(pm).get(PROBE) is ProbeNotifier,
    "register_policies": lambda pm: any(p.name == PROBE for p in get_policies(pm)),
    "register_commands": lambda pm: PROBE in _commands(pm),
}


def test_every_hook_has_a_core_call() -> None:
    assert sorted(CORE_CALLS) == hook_names()


@pytest.mark.parametrize("name", sorted(CORE_CALLS))
def test_core_calls_the_hook_and_gets_the_plugins_answer(name: str) -> None:
    probe = EveryHook()
    pm = get_plugin_manager(load_entry_points=False, env={}, extra_plugins=[probe])
    assert CORE_CALLS[name](pm), f"what the probe returned from {name} did not arrive"
    assert probe.called == [name]
