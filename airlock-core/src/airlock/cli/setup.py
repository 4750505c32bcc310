"""``airlock init``: a commented config and private directories."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from airlock.cli.context import CliState
from airlock.errors import AirlockError

PERSONAL_MODE_WARNING = (
    "Personal mode: the daemon runs as your user, so any program running as you "
    "(including an agent) can read Airlock's data directory. For real isolation run the "
    "daemon as its own system user: isolated mode (see docs/security.md)."
)

CONFIG_TEMPLATE = """\
# Airlock configuration. Every key can also be set as AIRLOCK_<SECTION>__<KEY>.
# Credentials never go here: add them with `airlock credentials add SERVICE`.

totp:
  issuer: Airlock
  account: me@airlock          # the label your authenticator app shows
  # digits: 6
  # period: 30

sessions:
  default_ttl: 60m             # how long an approved session lasts unless asked otherwise
  max_ttl: 8h                  # no session lasts longer than this

approvals:
  timeout: 5m                  # unanswered requests expire
  max_failures: 5              # wrong codes within failure_window before approvals lock
  failure_window: 15m
  lockout: 15m
  notifiers: [console]         # add telegram or signal once set up

# One entry per account; the key is the service name agents and the CLI use.
# Remove the # in front of an example to use it (its password goes in with
# `airlock credentials add NAME`), then restart the daemon.
services:
  # archive: {connector: maildir, path: ~/Mail/archive}
  # work:    {connector: imap, host: imap.example.com, port: 993, username: me@example.com}
  # gmail:   {connector: gmail}

permissions:
  rate_limit: 60               # operations a minute per session
  # gmail: {write: deny}      # never allow writes to this service, even with approval
"""


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
