"""``airlock demo``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo() -> None:
        """Run the whole product on a throwaway home: ask, approve, read, refuse, audit."""
        from airlock.demo.run import run_demo

        raise typer.Exit(run_demo())
