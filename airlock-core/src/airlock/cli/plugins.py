"""``airlock plugins list``."""

from __future__ import annotations

from typing import Annotated

import typer

from airlock.cli.context import CliState
from airlock.cli.output import print_json, table


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Installed plugins and what they provide.", no_args_is_help=True)
    app.add_typer(group, name="plugins")

    @group.command("list")
    def list_plugins(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        show_all: Annotated[bool, typer.Option("--all", help="Include built-in plugins.")] = False,
    ) -> None:
        """List plugins: name, distribution, version, hooks and components."""
        from airlock.framework.plugins import plugin_report

        state: CliState = ctx.obj
        report = plugin_report(state.pm, include_builtin=show_all)
        if as_json:
            print_json(report)
            return
        if not report:
            typer.echo("No plugins installed. Try: pip install airlock-mail")
            return
        rows = []
        for entry in report:
            if "error" in entry:
                rows.append([entry["name"], entry["distribution"], "-", "FAILED", entry["error"]])
                continue
            comps = ", ".join(
                f"{kind}: {', '.join(ids)}" for kind, ids in entry["components"].items() if ids
            )
            rows.append(
                [
                    entry["name"],
                    entry["distribution"],
                    entry["version"],
                    ", ".join(entry["hooks"]),
                    comps,
                ]
            )
        typer.echo(table(rows, ["NAME", "DISTRIBUTION", "VERSION", "HOOKS", "COMPONENTS"]))
