"""With every first-party package installed (as here), their commands are documented too:
tests/core/test_docs.py walks the CLI with what is installed, which in the core package's
own test run is core alone."""

from __future__ import annotations

import pytest
from tests.core.test_docs import cli_commands, shown_in_cli_docs

PLUGIN_COMMANDS = {"gcal auth", "signal setup", "telegram setup"}


def test_the_walk_finds_every_first_party_plugins_commands() -> None:
    assert set(cli_commands()) >= PLUGIN_COMMANDS


@pytest.mark.parametrize("command", sorted(PLUGIN_COMMANDS))
def test_every_plugin_command_is_in_the_cli_docs(command: str) -> None:
    assert shown_in_cli_docs(command), f"docs/cli.md should show `airlock {command}`"
