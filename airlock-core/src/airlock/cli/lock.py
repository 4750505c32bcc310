"""``airlock lock --set-passphrase`` and ``airlock unlock``: the passphrase lock.

Setting the passphrase works on the data directory (like ``airlock totp setup``: as the
person in personal mode, as root in isolated mode); unlocking goes to the running
daemon. The passphrase comes from a hidden prompt or stdin, never from the command line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from airlock.cli.context import CliState


def set_passphrase(state: CliState) -> None:
    from airlock.passphrase import read_passphrase, seal
    from airlock.settings.paths import Mode

    paths = state.paths
    passphrase = read_passphrase(confirm=True, prompt="New passphrase")
    try:
        seal(paths, passphrase)
    finally:
        if paths.mode is Mode.ISOLATED:
            from airlock.service.isolated import give_state_to_service

            give_state_to_service(paths.data_dir)
    typer.echo(
        "passphrase lock on: the TOTP secret and the vault are sealed; the daemon stays "
        "locked until `airlock unlock` (after each start too)"
    )


def register(app: typer.Typer) -> None:
    @app.command("lock")
    def lock(
        ctx: typer.Context,
        set_passphrase_: Annotated[
            bool,
            typer.Option(
                "--set-passphrase", help="Seal the TOTP secret and the vault with a passphrase."
            ),
        ] = False,
    ) -> None:
        """Turn the passphrase lock on (read from a prompt or stdin)."""
        from airlock.errors import InvalidInput

        if not set_passphrase_:
            raise InvalidInput(
                "airlock lock needs --set-passphrase",
                field="command",
                hint="`airlock lock --set-passphrase` seals the TOTP secret and the vault; the "
                "daemon then waits for `airlock unlock` after every start",
            )
        set_passphrase(ctx.obj)

    @app.command("unlock")
    def unlock(ctx: typer.Context) -> None:
        """Open the daemon's passphrase lock (passphrase from a prompt or stdin)."""
        from airlock.cli.client_support import with_client
        from airlock.passphrase import read_passphrase

        if not with_client(ctx.obj, lambda c: c.status()).passphrase_locked:
            # Asked first: nobody types the passphrase for nothing.
            typer.echo("nothing to unlock: the daemon is not locked (no passphrase lock, or open)")
            return
        passphrase = read_passphrase(confirm=False)
        with_client(ctx.obj, lambda c: c.unlock(passphrase))
        typer.echo("unlocked: approvals and the vault work until the daemon stops")
