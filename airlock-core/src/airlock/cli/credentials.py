"""``airlock credentials add|list|get|remove``: secrets go to the daemon's vault, never argv."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from airlock.cli.client_support import read_totp, with_client
from airlock.cli.context import CliState
from airlock.cli.output import MESSAGE_LIMIT, print_json
from airlock.common.text import untrusted_line
from airlock.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from pydantic import BaseModel


def credential_model(state: CliState, name: str) -> type[BaseModel]:
    """The Credentials model of a configured service's connector, or of a notifier."""
    from airlock.framework.plugins import get_connectors, get_notifiers
    from airlock.gateway.services import resolve_service

    if name in state.config.services:
        service = resolve_service(name, state.config, get_connectors(state.pm))
        return service.connector.credentials_model(service.settings)
    notifier = get_notifiers(state.pm).get(name)
    if notifier is not None:
        return notifier.Credentials
    raise NotFound(f"no service or notifier named {name!r}", hint="see `airlock status`")


def one_field(model: type[BaseModel], service: str, field: str) -> list[str]:
    """``[field]``, for ``credentials add SERVICE FIELD``, if that field can go in alone."""
    if field not in model.model_fields:
        raise InvalidInput(
            f"{service} has no credential field {field!r}",
            field="field",
            hint=f"its fields are: {', '.join(model.model_fields)}",
        )
    others = [n for n, f in model.model_fields.items() if n != field and f.is_required()]
    if others:
        raise InvalidInput(
            f"{service} also needs {', '.join(others)}: they are stored together",
            field="field",
            hint=f"run `airlock credentials add {service}`",
        )
    return [field]


def read_fields(model: type[BaseModel], only: list[str] | None = None) -> dict[str, str]:
    """Each field of *model* (or those in *only*): hidden and confirmed on a TTY,
    ``FIELD=VALUE`` lines otherwise (after the TOTP code's line)."""
    from airlock.ptrace import refuse_ptrace

    refuse_ptrace()  # no process of this user reads them out of this one's memory
    names = only or list(model.model_fields)
    if sys.stdin.isatty():
        import getpass

        fields = {}
        for name in names:
            label = model.model_fields[name].description or name
            first = getpass.getpass(f"{label}: ")
            if getpass.getpass(f"{label} (again): ") != first:
                raise InvalidInput(
                    f"the two entries of {name} differ; nothing was saved", field=name
                )
            fields[name] = first
        return fields
    fields = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        key, sep, value = line.rstrip("\n").partition("=")
        key = key.strip()
        if not sep:
            raise InvalidInput("stdin lines must be FIELD=VALUE", field="stdin")
        if key == "totp":
            raise InvalidInput("the TOTP code goes alone on the first line of stdin", field="totp")
        if key in names:
            fields[key] = value
        else:
            raise InvalidInput(f"unknown field {key!r}; expected {', '.join(names)}", field=key)
    missing = [n for n in names if n not in fields and model.model_fields[n].is_required()]
    if missing:
        raise InvalidInput(f"missing {', '.join(missing)}", field=missing[0])
    return fields


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Credentials kept in the daemon's encrypted vault.", no_args_is_help=True
    )
    app.add_typer(group, name="credentials")

    @group.command("add")
    def add(
        ctx: typer.Context,
        service: str,
        field: Annotated[
            str | None, typer.Argument(help="Only this field, e.g. api_key (default: all).")
        ] = None,
    ) -> None:
        """Store a service's credentials (asks for each field) and check they work.

        From a script: the TOTP code on stdin's first line, then FIELD=VALUE lines.
        """
        state: CliState = ctx.obj
        model = credential_model(state, service)
        if not model.model_fields:
            typer.echo(f"{service} takes no credentials: nothing to store")
            return
        only = one_field(model, service, field) if field is not None else None
        if sys.stdin.isatty():
            fields = read_fields(model, only)
            code = read_totp()  # asked last: a code lives about 30 seconds
        else:
            code = read_totp()
            fields = read_fields(model, only)
        out = with_client(state, lambda c: c.add_credentials(service, fields, totp=code))
        typer.echo(f"saved {', '.join(out.fields)} for {service}")
        if out.check:
            # The summary may quote the service's server: one line, no escape sequences.
            summary = untrusted_line(str(out.check.get("summary")), MESSAGE_LIMIT)
            typer.echo(("connected: " if out.check.get("ok") else "check failed: ") + summary)

    @group.command("list")
    def list_(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Which services and notifiers have credentials stored (never the values)."""
        from airlock.client import AirlockClient

        async def fetch(client: AirlockClient) -> list[dict[str, object]]:
            return await client.list_credentials()

        listing = with_client(ctx.obj, fetch)
        if as_json:
            print_json(listing)
            return
        if not listing:
            typer.echo("no configured service or notifier takes credentials")
        for item in listing:
            typer.echo(f"{item['service']:<16} {'stored' if item['stored'] else '-'}")

    @group.command("get")
    def get(ctx: typer.Context, service: str, field: str) -> None:
        """Print one stored value (needs your TOTP code; the read is audited)."""
        code = read_totp()
        out = with_client(ctx.obj, lambda c: c.get_credential(service, field, totp=code))
        typer.echo(out.value)

    @group.command("remove")
    def remove(ctx: typer.Context, service: str) -> None:
        """Delete a service's stored credentials (needs your TOTP code)."""
        code = read_totp()
        with_client(ctx.obj, lambda c: c.remove_credentials(service, totp=code))
        typer.echo(f"removed credentials of {service}")
