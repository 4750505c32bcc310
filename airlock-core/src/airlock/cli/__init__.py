"""The ``airlock`` command line, built by :func:`build_app` from a plugin manager.

Each sub-module adds one group of commands with a ``register(app)`` function; plugins add
theirs through the ``register_commands`` hook. Heavy libraries are imported inside the
command functions so ``airlock --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from airlock._version import __version__
from airlock.cli._lean import lazy_typer_coercion, without_pydantic_plugins
from airlock.errors import AirlockError

if TYPE_CHECKING:
    from airlock.framework.plugins import AirlockPluginManager


def _version(value: bool) -> None:
    if value:
        typer.echo(f"airlock {__version__}")
        raise typer.Exit()


def build_app(pm: AirlockPluginManager) -> typer.Typer:
    """The typer app with the built-in commands and every plugin's commands."""
    from airlock.cli import (
        access,
        audit,
        credentials,
        daemon,
        dashboard,
        demo,
        lock,
        mcp,
        plugins,
        service,
        services,
        setup,
        status,
        totp,
    )
    from airlock.cli.context import CliState

    lazy_typer_coercion()
    app = typer.Typer(
        name="airlock",
        help="Airlock: let AI agents reach your accounts only with your approval.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root(
        ctx: typer.Context,
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
        ] = False,
    ) -> None:
        ctx.obj = CliState(pm)

    commands = (
        setup,
        status,
        services,
        plugins,
        daemon,
        dashboard,
        service,
        lock,
        totp,
        access,
        credentials,
        audit,
        mcp,
        demo,
    )
    for module in commands:
        module.register(app)
    from airlock.framework.plugins import register_commands

    register_commands(pm, app)
    return app


def main() -> None:
    """Entry point of the ``airlock`` script."""
    without_pydantic_plugins()
    from airlock.cli.client_support import refuse_code_in_argv
    from airlock.cli.output import report_error
    from airlock.framework.plugins import get_plugin_manager

    try:
        refuse_code_in_argv(sys.argv[1:])
        app = build_app(get_plugin_manager())
        app(prog_name="airlock")
    except AirlockError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
