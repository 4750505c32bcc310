"""``airlock dashboard``: where the running daemon's dashboard is, opened in a browser."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from airlock.cli.context import CliState
from airlock.errors import AirlockError, DaemonUnreachable


class DashboardOff(AirlockError):
    code = "dashboard_off"


def dashboard_address(state: CliState) -> str:
    """The address the running daemon wrote when its dashboard started listening."""
    from airlock.dashboard.address import parse_listen

    settings = state.config.dashboard
    if parse_listen(settings.listen, allow_remote=settings.allow_remote) is None:
        raise DashboardOff(
            "the dashboard is off (dashboard.listen: off)",
            hint="set dashboard.listen in config.yaml (docs/configuration.md), then restart",
        )
    try:
        return (state.paths.run_dir / "dashboard.url").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DaemonUnreachable(
            "no running daemon serves the dashboard",
            hint="start it with `airlock serve`; if it runs, its log says why the "
            "dashboard did not start",
        ) from None


def _can_show_a_browser() -> bool:
    # Without a display, webbrowser would pick a text browser and take over the terminal.
    return sys.platform == "darwin" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def dashboard(
        ctx: typer.Context,
        no_browser: Annotated[
            bool, typer.Option("--no-browser", help="Only print the address.")
        ] = False,
    ) -> None:
        """Print the web dashboard's address and open it in a browser when there is one."""
        url = dashboard_address(ctx.obj)
        typer.echo(url)
        if no_browser or not _can_show_a_browser():
            typer.echo("open it in a browser on this machine; log in with a code from your app")
            return
        import webbrowser

        if not webbrowser.open(url):
            typer.echo("no browser could be opened; open the address yourself")
