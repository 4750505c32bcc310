"""``airlock service install|start|stop|status|uninstall``: the daemon in the background.

Personal mode: a systemd user unit, or a detached daemon when no user manager runs.
Isolated mode (``--isolated``, root): its own system user, hardened units, and a
supervisor where systemd is not PID 1. See docs/security.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airlock.cli.context import CliState
from airlock.cli.output import print_json

IsolatedOption = Annotated[
    bool, typer.Option("--isolated", help="The isolated-mode daemon (root; system users).")
]


def _say(line: str) -> None:
    typer.echo(line)


def _isolated(state: CliState, flag: bool) -> bool:
    from airlock.settings.paths import Mode

    return flag or state.paths.mode is Mode.ISOLATED


def register(app: typer.Typer) -> None:
    service_app = typer.Typer(
        name="service",
        help="Run the daemon in the background (personal or isolated mode).",
        no_args_is_help=True,
    )

    @service_app.command("install")
    def install(
        ctx: typer.Context,
        isolated: IsolatedOption = False,
        agent_user: Annotated[
            list[str] | None,
            typer.Option("--agent-user", help="A user whose agents may use Airlock (repeat)."),
        ] = None,
        wheels: Annotated[
            Path | None,
            typer.Option("--wheels", help="Install the program copy from these local wheels."),
        ] = None,
        import_personal: Annotated[
            str | None,
            typer.Option("--import-personal", help="Move USER's personal-mode Airlock here."),
        ] = None,
    ) -> None:
        """Install the background service (isolated: users, directories, units)."""
        from airlock.errors import InvalidInput
        from airlock.service import control
        from airlock.service import isolated as iso
        from airlock.service.units import systemd_is_pid1

        state: CliState = ctx.obj
        if not isolated:
            if agent_user or wheels or import_personal:
                raise InvalidInput(
                    "--agent-user, --wheels and --import-personal need --isolated",
                    field="isolated",
                )
            control.install_personal(state.paths, _say)
            return
        if wheels is not None and not wheels.is_dir():
            raise InvalidInput(f"--wheels {wheels}: not a directory", field="wheels")
        iso.install(agent_user or [], wheels=wheels, import_personal=import_personal, say=_say)
        if systemd_is_pid1():
            control.start_isolated(_say)
        else:
            _say("systemd is not PID 1 here: start the daemon with `airlock service start`")
        _say("next: airlock totp setup (as root), edit /etc/airlock/config.yaml, airlock reload")

    @service_app.command("start")
    def start(ctx: typer.Context, isolated: IsolatedOption = False) -> None:
        """Start the daemon in the background."""
        from airlock.service import control

        state: CliState = ctx.obj
        if _isolated(state, isolated):
            control.start_isolated(_say)
        else:
            control.start_personal(state.paths, _say)

    @service_app.command("stop")
    def stop(ctx: typer.Context, isolated: IsolatedOption = False) -> None:
        """Stop the background daemon."""
        from airlock.service import control
        from airlock.service.isolated import require_root

        state: CliState = ctx.obj
        if _isolated(state, isolated):
            require_root("service stop")
            control.stop_isolated(_say)
        else:
            control.stop_personal(state.paths, _say)

    @service_app.command("status")
    def status(
        ctx: typer.Context,
        isolated: IsolatedOption = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Whether the background daemon is installed and running."""
        from airlock.service import control

        state: CliState = ctx.obj
        facts = (
            control.status_isolated()
            if _isolated(state, isolated)
            else control.status_personal(state.paths)
        )
        if as_json:
            print_json(facts)
            return
        for key, value in facts.items():
            typer.echo(f"{key}: {value}")

    @service_app.command("uninstall")
    def uninstall(
        ctx: typer.Context,
        isolated: IsolatedOption = False,
        keep_data: Annotated[
            bool, typer.Option("--keep-data", help="Keep config, state and logs.")
        ] = False,
    ) -> None:
        """Stop and remove the service (isolated: also users, groups and data)."""
        from airlock.service import control
        from airlock.service import isolated as iso

        state: CliState = ctx.obj
        if isolated:
            iso.uninstall(keep_data=keep_data, say=_say)
        else:
            control.uninstall_personal(state.paths, _say)

    app.add_typer(service_app)

    @app.command("reload")
    def reload(ctx: typer.Context) -> None:
        """Make the daemon re-read its config, services and notifiers (sessions stay)."""
        from airlock.cli.client_support import with_client

        done = with_client(ctx.obj, lambda c: c.reload())
        services = ", ".join(done.services) or "none"
        typer.echo(f"reloaded: services {services}; notifiers {', '.join(done.notifiers)}")
