"""``airlock gcal auth SERVICE``: authorise Airlock for a calendar and store the grant."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from airlock.plugin import CliState
    from airlock_gcal.oauth import OAuthClient
    from airlock_gcal.settings import GcalSettings

__all__ = ["register"]


def register(app: Any) -> None:
    group = typer.Typer(help="Google Calendar (airlock-gcal).", no_args_is_help=True)
    app.add_typer(group, name="gcal")

    @group.command("auth")
    def auth(
        ctx: typer.Context,
        service: str,
        client_secrets: Annotated[
            Path | None,
            typer.Option("--client-secrets", help="The client_secret_….json of your OAuth client."),
        ] = None,
        browser: Annotated[
            bool, typer.Option("--browser/--no-browser", help="Open the address in a browser.")
        ] = True,
        timeout: Annotated[
            float, typer.Option(help="Seconds to wait for the browser.", min=10, max=3600)
        ] = 300.0,
    ) -> None:
        """Let Airlock read SERVICE's calendar: Google's sign-in in your browser, then
        the grant goes to the daemon's vault (your TOTP code is asked for)."""
        from airlock.plugin import read_totp, untrusted_line, with_client
        from airlock_gcal.browser import opened_privately
        from airlock_gcal.oauth import authorize

        state = ctx.obj
        settings = _service_settings(state, service)
        client = _client(client_secrets)
        # The grant can only be kept by the daemon: find out it is not running before
        # the person goes through Google's pages, not after.
        with_client(state, lambda c: c.status())
        with opened_privately(_browser() if browser else None) as open_page:
            refresh_token = authorize(
                client=client,
                scopes=settings.scopes(),
                auth_uri=settings.auth_uri,
                token_uri=settings.token_uri,
                say=lambda line: typer.echo(line, err=True),
                open_browser=open_page,
                timeout=timeout,
            )
        fields = {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": refresh_token,
        }
        code = read_totp()
        out = with_client(state, lambda c: c.add_credentials(service, fields, totp=code))
        typer.echo(f"saved {', '.join(out.fields)} for {service}")
        if out.check:
            # The summary may quote Google (or whoever answers at api_endpoint).
            summary = untrusted_line(str(out.check.get("summary")), 500)
            typer.echo(("connected: " if out.check.get("ok") else "check failed: ") + summary)


def _service_settings(state: CliState, service: str) -> GcalSettings:
    from airlock.plugin import InvalidInput
    from airlock_gcal.settings import GcalSettings

    settings = state.service_settings(service)
    if not isinstance(settings, GcalSettings):
        raise InvalidInput(f"service {service!r} does not use the gcal connector", field="service")
    return settings


def _client(path: Path | None) -> OAuthClient:
    import getpass

    from airlock.plugin import InvalidInput, refuse_ptrace
    from airlock_gcal.oauth import OAuthClient, load_client_secrets

    # The secret, then the grant, stay here while the person is in the browser.
    refuse_ptrace()
    if path is not None:
        return load_client_secrets(path)
    if not sys.stdin.isatty():
        raise InvalidInput(
            "pass --client-secrets FILE (no terminal to type the client id and secret in)",
            field="client_secrets",
        )
    client_id = typer.prompt("OAuth client id").strip()
    client_secret = getpass.getpass("OAuth client secret: ").strip()
    if not client_id or not client_secret:
        raise InvalidInput("the client id and secret are both needed", field="client_id")
    return OAuthClient(client_id, client_secret)


def _browser() -> Any:
    """``webbrowser.open`` where a graphical browser may exist, else nothing (a text
    browser would take over this terminal). It is given a private page that forwards to
    the address, never the address itself (``airlock_gcal.browser``)."""
    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    )
    if not graphical:
        return None
    import webbrowser

    return webbrowser.open
