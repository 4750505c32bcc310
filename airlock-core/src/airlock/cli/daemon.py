"""``airlock serve``: run the daemon in the foreground."""

from __future__ import annotations

import typer

from airlock.cli.context import CliState
from airlock.common.loop import run_loop


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(ctx: typer.Context) -> None:
        """Run the daemon in the foreground (systemd runs it in the background)."""
        from airlock.common.logs import configure_logging
        from airlock.daemon.server import serve as run

        state: CliState = ctx.obj
        configure_logging()
        run_loop(run(state.paths, state.pm))
