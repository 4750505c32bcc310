"""airlock.cli._lean: what the CLI skips at start-up changes no command's answer."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from airlock.cli._lean import lazy_typer_coercion


@pytest.fixture
def app() -> typer.Typer:
    lazy_typer_coercion()
    app = typer.Typer()

    @app.command()
    def cmd(
        n: Annotated[int, typer.Option(min=1, max=10)] = 5,
        name: Annotated[str | None, typer.Option()] = None,
        flag: Annotated[bool, typer.Option()] = False,
    ) -> None:
        typer.echo(f"{n!r} {name!r} {flag!r}")

    return app


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        ([], "5 None False"),
        (["--n", "3", "--name", "x", "--flag"], "3 'x' True"),
        (["--n", " 7 "], "7 None False"),
    ],
)
def test_values_are_converted_as_typer_converts_them(
    app: typer.Typer, argv: list[str], shown: str
) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown


@pytest.mark.parametrize("value", ["11", "0", "abc"])
def test_a_value_out_of_range_or_of_the_wrong_type_is_refused(app: typer.Typer, value: str) -> None:
    result = CliRunner().invoke(app, ["--n", value])
    assert result.exit_code == 2
    assert "--n" in result.output


def test_pydantic_finds_no_plugin_and_never_imports_importlib_metadata() -> None:
    probe = (
        "import sys\n"
        "from airlock.cli._lean import without_pydantic_plugins\n"
        "without_pydantic_plugins()\n"
        "from pydantic import BaseModel\n"
        "class M(BaseModel):\n    x: int\n"
        "assert M(x='1').x == 1\n"
        "from pydantic.plugin._loader import get_plugins\n"
        "print(list(get_plugins()), 'importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["[]", "False"]


DESCRIBE_EVERY_COMMAND = """
import json, re, sys
import typer.main
import airlock.cli
from airlock.framework.plugins import get_plugin_manager
if sys.argv[1] == "off":
    airlock.cli.signatures_read_once = lambda: None
app = airlock.cli.build_app(get_plugin_manager())

def describe(command, ctx):
    params = [
        sorted((k, re.sub(" at 0x[0-9a-f]+", "", repr(v))) for k, v in vars(p).items())
        for p in command.params
    ]
    found = {"help": command.get_help(ctx), "params": params}
    for name in getattr(command, "commands", {}):
        sub = command.commands[name]
        found[name] = describe(sub, typer.Context(sub, info_name=name, parent=ctx))
    return found

command = typer.main.get_command(app)
print(json.dumps(describe(command, typer.Context(command, info_name="airlock")), default=repr))
"""


def test_reading_signatures_once_changes_no_command() -> None:
    """Every command's parameters (names, types, defaults, help) are what typer builds
    when it reads each signature as often as it likes."""
    described = [
        subprocess.run(
            [sys.executable, "-c", DESCRIBE_EVERY_COMMAND, mode],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for mode in ("on", "off")
    ]
    assert '"credentials"' in described[0]
    assert described[0] == described[1]
