"""``airlock status``: where things are, what is configured, what is missing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from airlock.cli.context import CliState
from airlock.cli.output import print_json


def collect_status(state: CliState) -> dict[str, Any]:
    from airlock.plugins import get_connectors, plugin_report
    from airlock.services import describe_services

    paths, config = state.paths, state.config
    connectors = get_connectors(state.pm)
    status: dict[str, Any] = {
        "config": str(paths.config_file),
        "config_exists": paths.config_file.exists(),
        "mode": paths.mode.value,
        "data_dir": str(paths.data_dir),
        "socket": str(paths.socket),
        "plugins": [p["name"] for p in plugin_report(state.pm, include_builtin=False)],
        "services": describe_services(config, connectors),
        "warnings": [],
    }
    if paths.mode.value == "personal":
        from airlock.cli.setup import PERSONAL_MODE_WARNING

        status["warnings"].append(PERSONAL_MODE_WARNING)
    return status


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show the config, mode, plugins and configured services."""
        facts = collect_status(ctx.obj)
        if as_json:
            print_json(facts)
            return
        typer.echo(
            f"config:   {facts['config']}{'' if facts['config_exists'] else ' (missing: defaults)'}"
        )
        typer.echo(f"mode:     {facts['mode']}")
        typer.echo(f"data:     {facts['data_dir']}")
        typer.echo(f"socket:   {facts['socket']}")
        typer.echo(f"plugins:  {', '.join(facts['plugins']) or 'none'}")
        if facts["services"]:
            typer.echo("services:")
            for svc in facts["services"]:
                problem = f"  ! {svc['problem']}" if svc.get("problem") else ""
                typer.echo(f"  {svc['name']:<12} {svc['connector']}{problem}")
        else:
            typer.echo("services: none configured (see `airlock init` and docs/configuration.md)")
        for warning in facts["warnings"]:
            typer.echo(f"\nwarning: {warning}")
