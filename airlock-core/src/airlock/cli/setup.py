"""``airlock init``: a commented config and private directories."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from airlock.cli.context import CliState
from airlock.errors import AirlockError
from airlock.settings.config_template import CONFIG_TEMPLATE

PERSONAL_MODE_WARNING = (
    "Personal mode: the daemon runs as your user, so any program running as you "
    "(including an agent) can read Airlock's data directory. For real isolation run the "
    "daemon as its own system user: isolated mode (see docs/security.md)."
)


def register(app: typer.Typer) -> None:
    @app.command()
    def init(
        ctx: typer.Context,
        force: Annotated[
            bool, typer.Option("--force", help="Overwrite an existing config.")
        ] = False,
        isolated: Annotated[
            bool, typer.Option("--isolated", help="Use the system paths of isolated mode.")
        ] = False,
    ) -> None:
        """Write a commented config.yaml and create the data directories (0700)."""
        state: CliState = ctx.obj
        if isolated:
            os.environ["AIRLOCK_MODE"] = "isolated"
            state.__dict__.pop("paths", None)
        paths = state.paths
        if paths.config_file.exists() and not force:
            raise AirlockError(
                f"{paths.config_file} already exists; nothing changed",
                hint="use --force to overwrite it",
            )
        paths.config_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.config_file.write_text(CONFIG_TEMPLATE, encoding="utf-8")
        paths.config_file.chmod(0o600)
        paths.ensure_data_dirs()
        typer.echo(f"wrote {paths.config_file}")
        typer.echo(f"data directory {paths.data_dir} (0700)")
        if paths.mode.value == "personal":
            typer.echo(f"\nnote: {PERSONAL_MODE_WARNING}")
        typer.echo("\nnext: airlock totp setup, then add a service to the config")
