"""``airlock mcp`` (the stdio MCP server) and ``airlock mcp config`` (how to start it)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from airlock.cli.context import CliState
from airlock.cli.output import print_json

SCRIPT = "airlock-mcp"
MODULE_ARGS = ["-P", "-m", "airlock.mcp"]
"""Without the script: the module, with the working directory kept off the import path
(an MCP client may start the server in a folder another user can write to)."""


def server_command() -> tuple[str, list[str]]:
    """An absolute command that starts the MCP server from this installation.

    MCP clients start servers without the user's shell, so a bare ``airlock-mcp`` that is
    only on the PATH of an activated virtualenv would not be found.
    """
    beside = Path(sys.executable).with_name(SCRIPT)
    if beside.is_file():
        return str(beside), []
    found = shutil.which(SCRIPT)
    if found:
        return str(Path(found).absolute()), []
    return sys.executable, list(MODULE_ARGS)


def client_config(state: CliState, name: str) -> dict[str, Any]:
    """The ``mcpServers`` entry an MCP client (Claude Code, Claude Desktop, ...) needs."""
    command, args = server_command()
    env = {"AIRLOCK_SOCKET": str(state.paths.socket.absolute())}
    if os.environ.get("AIRLOCK_HOME"):
        # The server reads mcp.approval_wait from the same home's config.
        env["AIRLOCK_HOME"] = str(Path(os.environ["AIRLOCK_HOME"]).absolute())
    return {"mcpServers": {name: {"command": command, "args": args, "env": env}}}


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="mcp",
        help="The MCP server for agents (stdio); `airlock mcp config` prints its config.",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @group.callback()
    def serve(ctx: typer.Context) -> None:
        """Run the MCP server on stdin/stdout (what an MCP client starts)."""
        if ctx.invoked_subcommand is None:
            from airlock.mcp import main

            main()

    @group.command("config")
    def config(
        ctx: typer.Context,
        name: Annotated[str, typer.Option(help="Name of the server in the MCP config.")] = (
            "airlock"
        ),
    ) -> None:
        """Print the JSON to paste into an MCP client's configuration."""
        data = client_config(ctx.obj, name)
        print_json(data)
        server = data["mcpServers"][name]
        import shlex

        env = " ".join(f"-e {k}={shlex.quote(v)}" for k, v in server["env"].items())
        line = shlex.join([server["command"], *server["args"]])
        sys.stderr.write(
            f"Add it to your MCP client's configuration; for Claude Code:\n"
            f"  claude mcp add {shlex.quote(name)} {env} -- {line}\n"
        )

    app.add_typer(group)
