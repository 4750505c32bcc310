"""``airlock serve``: run the daemon in the foreground."""

from __future__ import annotations

import typer

from airlock.cli.context import CliState


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(ctx: typer.Context) -> None:
        """Run the daemon in the foreground (systemd runs it in the background)."""
        import asyncio

        from airlock.daemon.server import serve as run
        from airlock.logs import configure_logging

        state: CliState = ctx.obj
        configure_logging()
        asyncio.run(run(state.paths, state.pm))
