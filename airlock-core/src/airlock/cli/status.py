"""``airlock status``: where things are, what is configured, what is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from airlock.cli.context import CliState
from airlock.cli.output import print_json

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airlock.framework.connectors import Connector


# What `airlock status` shows of the daemon's answer (api.DaemonStatus, which has more).
STATUS_FIELDS = frozenset(
    {"pid", "totp_enrolled", "locked", "locked_until", "pending", "sessions", "services"}
    | {"notifiers", "audit_seq"}
)


def collect_status(state: CliState) -> dict[str, Any]:
    from airlock.cli.checked import check, kept
    from airlock.framework.plugins import get_connectors, plugin_report

    paths = state.paths
    connectors = get_connectors(state.pm)
    known = kept(state, connectors)  # the last check's, if nothing it depends on changed
    configured = known is not None or state.has_services  # an invalid config is refused first
    status: dict[str, Any] = {
        "config": str(paths.config_file),
        "config_exists": paths.config_exists(),
        "mode": paths.mode.value,
        "data_dir": str(paths.data_dir),
        "socket": str(paths.socket),
        "plugins": [p["name"] for p in plugin_report(state.pm, include_builtin=False)],
        "services": [],
        "warnings": [],
    }
    status["daemon"] = daemon_facts(state)
    if known is not None:
        status["services"] = known.services
    elif configured:
        checked = checked_by_daemon(state, status["daemon"], connectors)
        status["services"] = checked or check(state, connectors).services
    from airlock.ptrace import ptrace_scope, same_user_can_read_memory

    scope, meaning = ptrace_scope()
    status["ptrace_scope"] = {"value": scope, "meaning": meaning}
    if paths.mode.value == "personal" and same_user_can_read_memory(scope):
        status["warnings"].append(f"ptrace_scope {scope if scope is not None else '-'}: {meaning}")
    if status["daemon"]["running"]:
        loaded = set(status["daemon"]["services"])
        for item in status["services"]:
            item["loaded"] = item["name"] in loaded
        if status["daemon"].get("config_changed"):
            from airlock.settings.config_file import CONFIG_CHANGED

            status["warnings"].append(CONFIG_CHANGED)
    if paths.mode.value == "personal":
        from airlock.cli.setup import PERSONAL_MODE_WARNING

        status["warnings"].append(PERSONAL_MODE_WARNING)
    return status


def checked_by_daemon(
    state: CliState, daemon: Mapping[str, Any], connectors: Mapping[str, type[Connector]]
) -> list[dict[str, Any]] | None:
    """The configured services as :func:`airlock.cli.checked.check` describes them, told from
    the running daemon's answer without importing a connector: None unless the daemon
    loaded this very file (it says the file is unchanged since), which is plainly valid
    here with no ``AIRLOCK_`` variable setting a key, and the same services, whose
    connectors are installed here too. The daemon loads a config only when every
    service's connector accepts its settings (``resolve_services``), so none has a
    problem to show; any other case is checked here, by the connectors."""
    plain = state.plain_services
    if not plain or not daemon["running"] or daemon.get("config_changed") is not False:
        return None
    if set(daemon["services"]) != set(plain):
        return None
    if any(entry.connector not in connectors for entry in plain.values()):
        return None
    return [{"name": name, "connector": plain[name].connector} for name in sorted(plain)]


def daemon_facts(state: CliState) -> dict[str, Any]:
    """What the running daemon says, or that none answers on the socket.

    One blocking GET (``airlock.clients._plain``): the client's event loop and pydantic
    models would cost more than the rest of ``airlock status``."""
    from airlock.clients._plain import get_json
    from airlock.errors import AirlockError

    try:
        facts = get_json(state.paths.socket, "/v1/status")
        if not isinstance(facts, dict) or not facts.keys() >= STATUS_FIELDS:
            raise AirlockError(
                "unexpected answer from the daemon (DaemonStatus)",
                hint="the client and the daemon may be different Airlock versions",
            )
    except AirlockError as exc:
        return {"running": False, "problem": exc.message}
    return {"running": True, **facts}


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show the config, mode, plugins and configured services."""
        from airlock.common.text import untrusted_line

        facts = collect_status(ctx.obj)
        if as_json:
            print_json(facts)
            return
        typer.echo(
            f"config:   {facts['config']}{'' if facts['config_exists'] else ' (missing: defaults)'}"
        )
        typer.echo(f"mode:     {facts['mode']}")
        typer.echo(f"data:     {facts['data_dir']}")
        typer.echo(f"socket:   {facts['socket']}")
        typer.echo(f"plugins:  {', '.join(facts['plugins']) or 'none'}")
        if facts["services"]:
            typer.echo("services:")
            for svc in facts["services"]:
                problem = f"  ! {untrusted_line(svc['problem'], 300)}" if svc.get("problem") else ""
                if svc.get("loaded") is False:
                    problem += "  ! not loaded by the running daemon: run airlock reload"
                typer.echo(f"  {svc['name']:<12} {svc['connector']}{problem}")
        else:
            typer.echo("services: none configured (see `airlock init` and docs/configuration.md)")
        daemon = facts["daemon"]
        if daemon["running"]:
            lock = "LOCKED until " + str(daemon["locked_until"]) if daemon["locked"] else "open"
            enrolled = daemon["totp_enrolled"]
            totp = "enrolled" if enrolled else "NOT enrolled: run `airlock totp setup`"
            typer.echo(
                f"daemon:   running (pid {daemon['pid']}), TOTP {totp}"
                f", approvals {lock}, {daemon['pending']} pending, "
                f"{len(daemon['sessions'])} session(s) of yours"
            )
            if daemon.get("passphrase_locked"):
                typer.echo(
                    "          LOCKED by its passphrase: requests wait; run `airlock unlock`"
                )
            for channel in daemon["notifiers"]:
                detail = untrusted_line(str(channel["detail"]), 300)
                health = "ok" if channel["ok"] else f"UNREACHABLE ({detail})"
                typer.echo(f"  notifier {channel['name']}: {health}")
            for service in daemon.get("service_health", []):
                if not service["ok"]:
                    detail = untrusted_line(str(service["detail"]), 300)
                    typer.echo(f"  service {service['name']}: UNHEALTHY ({detail})")
        else:
            typer.echo(
                "daemon:   not running (start it with `airlock service start` or `airlock serve`)"
            )
        scope = facts["ptrace_scope"]
        value = "-" if scope["value"] is None else scope["value"]
        warned = any(w.startswith("ptrace_scope") for w in facts["warnings"])
        # Said once: in full here, or by the warning below (which it then points to).
        meaning = "see the warning below" if warned else scope["meaning"]
        typer.echo(f"ptrace:   scope {value}: {meaning}")
        for warning in facts["warnings"]:
            typer.echo(f"\nwarning: {warning}")
