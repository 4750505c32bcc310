"""``airlock demo``."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        keep: Annotated[
            bool,
            typer.Option("--keep", help="Keep the demo daemon and its dashboard running."),
        ] = False,
    ) -> None:
        """Run the whole product on a throwaway home: ask, approve, read, refuse, audit."""
        from airlock.demo.run import run_demo

        raise typer.Exit(run_demo(keep=keep))
