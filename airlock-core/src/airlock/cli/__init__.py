"""The ``airlock`` command line, built by :func:`build_app` from a plugin manager.

Each sub-module adds one group of commands with a ``register(app)`` function; plugins add
theirs through the ``register_commands`` hook. Heavy libraries are imported inside the
command functions so ``airlock --help`` stays fast.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from airlock._version import __version__
from airlock.cli._lean import lazy_typer_coercion, signatures_read_once, without_pydantic_plugins
from airlock.errors import AirlockError

if TYPE_CHECKING:
    from airlock.framework.plugins import AirlockPluginManager


def _version(value: bool) -> None:
    if value:
        typer.echo(f"airlock {__version__}")
        raise typer.Exit()


# Each built-in top-level command and the module of airlock.cli that adds it (kept equal
# to what the modules add by tests/core/test_cli.py).
BUILTIN_COMMANDS = {
    "init": "setup",
    "status": "status",
    "services": "services",
    "plugins": "plugins",
    "serve": "daemon",
    "dashboard": "dashboard",
    "reload": "service",
    "service": "service",
    "lock": "lock",
    "unlock": "lock",
    "totp": "totp",
    "request": "access",
    "pending": "access",
    "approve": "access",
    "deny": "access",
    "sessions": "access",
    "revoke": "access",
    "run": "access",
    "credentials": "credentials",
    "audit": "audit",
    "mcp": "mcp",
    "demo": "demo",
}
MODULES = tuple(dict.fromkeys(BUILTIN_COMMANDS.values()))


def build_app(pm: AirlockPluginManager, *, command: str | None = None) -> typer.Typer:
    """The typer app with the built-in commands and every plugin's commands; with
    *command* (a built-in one), only what running that command needs: typer turns every
    command's signature into parameters at start, a sixth of a command's start-up."""
    import importlib

    from airlock.cli.context import CliState

    modules: tuple[str, ...]
    if command is not None and command in BUILTIN_COMMANDS:
        modules = (BUILTIN_COMMANDS[command],)
    else:
        command, modules = None, MODULES
    lazy_typer_coercion()
    signatures_read_once()
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

    for name in modules:
        importlib.import_module(f"airlock.cli.{name}").register(app)
    # A plugin's command never takes a built-in command's name. `plugins` reports every
    # plugin's hooks, so it registers their commands too (a failing one is listed).
    if command in (None, "plugins"):
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
        first = sys.argv[1] if len(sys.argv) > 1 else None
        app = build_app(get_plugin_manager(), command=first)
        # What start-up made (modules, plugins, commands) lives as long as the process:
        # the cyclic collector stops walking it, at each collection and at exit (~15 ms
        # CPU of every command, benchmarks/cli_startup.py). What the command makes from
        # here on is collected as ever (serve and mcp included); the few cycles start-up
        # left as garbage stay until the process ends.
        gc.freeze()
        app(prog_name="airlock")
    except AirlockError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
