"""Asking for access and answering requests: request, pending, approve, deny, sessions,
revoke, run."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airlock.cli.client_support import WaitDisplay, read_totp, with_client
from airlock.cli.context import CliState
from airlock.cli.output import print_json, print_listing, readable_json
from airlock.errors import InvalidInput, Unauthenticated

if TYPE_CHECKING:
    from airlock import api
    from airlock.client import AirlockClient

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _access_text(request: api.PendingRequest) -> str:
    """The ACCESS cell of ``airlock pending``: a write names its call, a spend its amount
    (the parameters are in the prompt and in ``--json``)."""
    from airlock.common.text import untrusted_line

    text = str(request.access.value)
    if request.operation:
        call = f"{request.operation.get('service')}.{request.operation.get('name')}"
        text += " " + untrusted_line(call, 60)
    if request.budget_usd is not None:
        text += f" up to ${request.budget_usd:.2f}"
    return text if request.status == "pending" else f"{text} (approved, not collected)"


async def _ask(
    client: AirlockClient,
    services: list[str],
    reason: str,
    *,
    ttl: str | None,
    write: bool,
    wait: float,
    spend: float | None = None,
) -> api.SessionGrant:
    from airlock.models import Access

    display = WaitDisplay()
    access = Access.SPEND if spend is not None else Access.WRITE if write else Access.READ
    created = await client.submit_request(
        services, reason, access=access, ttl=ttl, budget_usd=spend
    )
    try:
        return await client.await_approval(created, wait=wait, on_wait=display)
    finally:
        display.done()


def _budget_cell(session: api.SessionInfo) -> str:
    budget = session.budget
    if budget is None:
        return "-"
    return f"${budget.spent_usd:.4f} / ${budget.left_usd:.4f} of ${budget.limit_usd:.2f}"


def register(app: typer.Typer) -> None:
    @app.command()
    def request(
        ctx: typer.Context,
        services: Annotated[list[str], typer.Argument(help="Services to ask for.")],
        reason: Annotated[str, typer.Option("--reason", help="Why, shown to the person.")],
        ttl: Annotated[str | None, typer.Option("--ttl", help="How long, e.g. 60m.")] = None,
        write: Annotated[bool, typer.Option("--write", help="Ask for write access.")] = False,
        spend: Annotated[
            float | None,
            typer.Option("--spend", help="Ask to spend up to this many US dollars (LLM)."),
        ] = None,
        wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for approval.")] = 120,
        as_json: JsonOption = False,
    ) -> None:
        """Ask for access and wait for the person's approval; prints the session."""
        state: CliState = ctx.obj
        grant = with_client(
            state,
            lambda c: _ask(c, services, reason, ttl=ttl, write=write, wait=wait, spend=spend),
        )
        if as_json:
            print_json(grant.model_dump(mode="json"))
        else:
            until = f"{grant.expires_at:%H:%M} UTC"
            typer.echo(f"approved: session {grant.id} on {', '.join(grant.services)} until {until}")
            typer.echo(grant.token)

    @app.command()
    def pending(ctx: typer.Context, as_json: JsonOption = False) -> None:
        """List requests waiting for approval, and approved ones not collected yet."""
        from airlock.common.text import untrusted_line

        found = with_client(ctx.obj, lambda c: c.pending())
        print_listing(
            found.requests + found.uncollected,
            as_json=as_json,
            dump=lambda r: r.model_dump(mode="json"),
            empty="no pending requests",
            headers=["CODE", "SERVICES", "ACCESS", "WHO", "FINGERPRINT", "REASON", "ACTS ON"],
            row=lambda r: [
                r.code,
                ", ".join(r.services),
                _access_text(r),
                f"uid {r.requester_uid}",
                r.fingerprint,
                untrusted_line(r.reason, 60),
                # The service's text; only another uid's request carries it (the agent
                # never gets it): the prompt and the dashboard show it for your own.
                untrusted_line(r.target, 80) if r.target else "",
            ],
        )

    @app.command()
    def approve(
        ctx: typer.Context,
        code: Annotated[str, typer.Argument(help="The request's 4-character code.")],
    ) -> None:
        """Approve a pending request with a code from your authenticator app.

        The code is asked for (hidden), or read from the first line of stdin.
        """
        secret = read_totp()
        done = with_client(ctx.obj, lambda c: c.approve(code, secret))
        typer.echo(f"approved {done.code}")

    @app.command()
    def deny(
        ctx: typer.Context, code: Annotated[str, typer.Argument(help="The request's code.")]
    ) -> None:
        """Deny a pending request."""
        done = with_client(ctx.obj, lambda c: c.deny(code))
        typer.echo(f"denied {done.code}")

    @app.command()
    def sessions(ctx: typer.Context, as_json: JsonOption = False) -> None:
        """List your active sessions, and approved requests not collected yet (run by the
        daemon's owner or root: every user's, with the uid each belongs to)."""
        found = with_client(ctx.obj, lambda c: c.sessions())
        if found.uncollected and not as_json:
            codes = ", ".join(r.code for r in found.uncollected)
            typer.echo(f"approved, session not collected yet: {codes}")
        others = any(s.uid != os.getuid() for s in found.sessions)
        print_listing(
            found.sessions,
            as_json=as_json,
            dump=lambda s: s.model_dump(mode="json"),
            empty="no active sessions",
            headers=[
                "ID",
                *(["UID"] if others else []),
                "SERVICES",
                "ACCESS",
                "EXPIRES (UTC)",
                "USES",
                "BUDGET USED / LEFT",
            ],
            row=lambda s: [
                s.id,
                *([str(s.uid)] if others else []),
                ", ".join(s.services),
                s.access,
                f"{s.expires_at:%Y-%m-%d %H:%M}",
                str(s.use_count),
                _budget_cell(s),
            ],
        )

    @app.command()
    def revoke(
        ctx: typer.Context,
        session_id: Annotated[str | None, typer.Argument(help="The session to revoke.")] = None,
        revoke_all: Annotated[
            bool, typer.Option("--all", help="Revoke all your sessions.")
        ] = False,
    ) -> None:
        """Revoke one session, or all of them; takes effect on the next call."""
        if revoke_all == (session_id is not None):
            raise InvalidInput("give a session id or --all", hint="`airlock sessions` lists them")
        done = with_client(
            ctx.obj, lambda c: c.revoke_all() if revoke_all else c.revoke(str(session_id))
        )
        cancelled = f", cancelled {len(done.cancelled)} approved request(s) not yet collected"
        typer.echo(
            f"revoked {len(done.revoked)} session(s)" + (cancelled if done.cancelled else "")
        )

    @app.command()
    def run(
        ctx: typer.Context,
        service: Annotated[str, typer.Argument(help="The service, e.g. mail.")],
        operation: Annotated[str, typer.Argument(help="The operation, e.g. list_messages.")],
        params: Annotated[str, typer.Option("-p", "--params", help="Parameters as JSON.")] = "{}",
        ttl: Annotated[
            str | None, typer.Option("--ttl", help="Session length if one is asked for.")
        ] = None,
        reason: Annotated[
            str | None, typer.Option("--reason", help="Why, if access is asked for.")
        ] = None,
        wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for approval.")] = 120,
    ) -> None:
        """Run one operation, asking for access first when there is no session."""
        from airlock.cli.token_cache import TokenCache

        try:
            parsed: Any = json.loads(params)
        except ValueError:
            raise InvalidInput("-p must be a JSON object", field="params") from None
        if not isinstance(parsed, dict):
            raise InvalidInput("-p must be a JSON object", field="params")
        state: CliState = ctx.obj
        cache = TokenCache(state.paths.cache_dir)
        why = reason or f"airlock run {service} {operation}"

        async def go(client: AirlockClient) -> api.OperationOut:
            known = (await client.catalogue()).get(service)
            op = next((o for o in known.operations if o.name == operation), None) if known else None
            if op is not None and op.access == "write":
                # A write is approved for this exact call and runs once; no session can run it.
                shown = readable_json(parsed, indent=None, sort_keys=True)
                sys.stderr.write(
                    f"{service}.{operation} {shown} changes your data: asking the person "
                    "to approve exactly this call\n"
                )
                display = WaitDisplay()
                try:
                    return await client.invoke(
                        service, operation, parsed, reason=why, on_wait=display, wait=wait
                    )
                finally:
                    display.done()
            token = cache.get(service)
            if token is not None:
                try:
                    return await client.call(service, operation, parsed, token=token)
                except Unauthenticated:
                    cache.drop(service)
            await client.check_params(service, operation, parsed)  # before asking anyone
            grant = await _ask(client, [service], why, ttl=ttl, write=False, wait=wait)
            cache.put(grant.services, grant.token, grant.expires_at)
            return await client.call(service, operation, parsed, token=grant.token)

        out = with_client(state, go)
        sys.stdout.write(readable_json(out.result) + "\n")
