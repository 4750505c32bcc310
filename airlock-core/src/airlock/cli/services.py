"""``airlock services [SERVICE]``: what agents may ask for, operation by operation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from airlock.cli.context import CliState
from airlock.cli.output import CELL_LIMIT, MESSAGE_LIMIT, print_json
from airlock.common.text import untrusted_line
from airlock.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airlock.api import OperationInfo
    from airlock.client import AirlockClient
    from airlock.framework.connectors import Connector, OperationSpec


def _type(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    choices = [_type(s) for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    return " | ".join(choices) or "any"


def describe_params(spec: OperationSpec) -> list[dict[str, Any]]:
    """Each parameter of an operation, from its params model."""
    return _params_of(spec.params_schema())


def _params_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        entry: dict[str, Any] = {
            "name": name,
            "type": _type(prop),
            "required": name in required,
            "description": prop.get("description", ""),
        }
        if "default" in prop:
            entry["default"] = prop["default"]
        params.append(entry)
    return params


class _DaemonView(NamedTuple):
    loaded: set[str] | None
    """The services the running daemon loaded (None: no daemon)."""
    stored: set[str]
    """Those with stored credentials."""
    changed: bool
    """Whether the config changed since it started."""
    refused: dict[str, str]
    """Services whose credentials their service refused, with what it said."""
    listed: dict[str, list[OperationInfo]]
    """Operations of the services whose connector lists them when it opens."""
    down: str = "daemon not running (start it with `airlock serve`)"
    """Each service's health when *loaded* is None."""


def _daemon_view(state: CliState, listing: set[str]) -> _DaemonView:
    """What the running daemon says; the operations of the services in *listing* (those
    only an open connector knows) come from its service list."""
    from airlock.cli.client_support import with_client
    from airlock.errors import AirlockError, DaemonUnreachable

    async def ask(client: AirlockClient) -> _DaemonView:
        status = await client.status()
        stored = {str(c["service"]) for c in await client.list_credentials() if c.get("stored")}
        refused = {h.name: h.detail for h in status.service_health if not h.ok}
        listed = {}
        if listing & set(status.services):
            catalogue = await client.services()
            listed = {s.name: s.operations for s in catalogue.services if s.name in listing}
        return _DaemonView(set(status.services), stored, status.config_changed, refused, listed)

    try:
        return with_client(state, ask)
    except DaemonUnreachable:
        return _DaemonView(None, set(), False, {}, {})
    except AirlockError as exc:  # it runs, but its answer is not one this client reads
        why = f"the running daemon's answer: {exc.message}" + (f"; {exc.hint}" if exc.hint else "")
        return _DaemonView(None, set(), False, {}, {}, why)


def _takes_credentials(
    state: CliState, name: str, connectors: Mapping[str, type[Connector]]
) -> bool:
    """Whether the service takes credentials (its settings may say which: an MCP service's env)."""
    from airlock.gateway.services import resolve_entry

    service = resolve_entry(name, state.services, connectors)
    return bool(service.connector.credentials_model(service.settings).model_fields)


def connector_facts(cls: type[Connector]) -> dict[str, Any]:
    """What ``airlock services`` shows of a connector: its title, whether it lists its
    operations when it opens, and the operations it declares."""
    return {
        "title": cls.title,
        "lists_operations": cls.lists_operations,
        "operations": [
            {
                "name": spec.name,
                "access": spec.access.value,
                "description": spec.description,
                "params": describe_params(spec),
            }
            for spec in cls.operations.values()
        ],
    }


def collect_services(state: CliState) -> list[dict[str, Any]]:
    from airlock.cli.checked import check, kept
    from airlock.framework.plugins import get_connectors
    from airlock.settings.config_file import CONFIG_CHANGED

    connectors = get_connectors(state.pm)
    checked = kept(state, connectors, operations=True) or check(state, connectors, connector_facts)
    facts = checked.connectors or {}
    dynamic = {
        item["name"]
        for item in checked.services
        if item["connector"] in facts and facts[item["connector"]]["lists_operations"]
    }
    loaded, stored, changed, refused, listed, down = _daemon_view(state, dynamic)
    listing = []
    for item in checked.services:
        name, known = item["name"], facts.get(item["connector"])
        entry: dict[str, Any] = {"name": name, "connector": item["connector"]}
        if item.get("problem"):
            entry["health"] = item["problem"]
        elif loaded is None:
            entry["health"] = down
        elif name not in loaded:
            entry["health"] = "not loaded by the running daemon: " + CONFIG_CHANGED.split(": ")[1]
        elif name not in stored and _takes_credentials(state, name, connectors):
            entry["health"] = f"no credentials: run `airlock credentials add {name}`"
        elif name in refused:
            entry["health"] = f"credentials refused: {refused[name]}"
        else:
            entry["health"] = "ok"
        if changed and name in (loaded or set()):
            entry["health"] += f" ({CONFIG_CHANGED})"
        entry["title"] = known["title"] if known else ""
        entry["operations"] = list(known["operations"]) if known else []
        declared = {op["name"] for op in entry["operations"]}
        entry["operations"] += [
            {
                "name": op.name,
                "access": op.access.value,
                "description": op.description,
                "params": _params_of(op.params_schema),
            }
            for op in listed.get(name, ())
            if op.name not in declared
        ]
        listing.append(entry)
    return listing


def _param_text(param: dict[str, Any]) -> str:
    """One parameter as `airlock services` shows it: its name is the service's (an MCP
    server picks it), so it goes to the terminal as one safe line."""
    name = untrusted_line(str(param["name"]), CELL_LIMIT)
    if "default" in param:
        return f"{name}={untrusted_line(json.dumps(param['default']), CELL_LIMIT)}"
    return name + ("" if param["required"] else "?")


def register(app: typer.Typer) -> None:
    @app.command()
    def services(
        ctx: typer.Context,
        service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List configured services: connector, health and each operation with its access
        level, parameters and description."""
        listing = collect_services(ctx.obj)
        if service is not None:
            listing = [s for s in listing if s["name"] == service]
            if not listing:
                raise NotFound(
                    f"no service named {service!r}", hint="`airlock services` lists them"
                )
        if as_json:
            print_json(listing)
            return
        if not listing:
            typer.echo("no services configured (see `airlock init` and docs/configuration.md)")
        for entry in listing:
            title = f" ({entry['title']})" if entry["title"] else ""
            health = untrusted_line(str(entry["health"]), MESSAGE_LIMIT)
            typer.echo(f"{entry['name']}: {entry['connector']}{title}, {health}")
            for op in entry["operations"]:
                described = untrusted_line(str(op["description"]), MESSAGE_LIMIT)
                typer.echo(f"  {op['name']:<16} {op['access']:<6} {described}")
                if op["params"]:
                    shown = ", ".join(_param_text(p) for p in op["params"])
                    typer.echo(f"  {'':<16} {'':<6} params: {shown}")
