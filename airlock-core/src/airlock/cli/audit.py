"""``airlock audit [today|yesterday] [--since 7d] ...`` and ``airlock audit verify``.

Listing asks the daemon (``GET /v1/audit``), like every other client command. Verifying
reads the files and the key directly, because its job is to check the daemon's work: run
it as the person in personal mode, as root or the airlock user in isolated mode. It
exits 1 and names the first bad file and line when the chain is broken.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from airlock.cli.context import CliState
from airlock.cli.output import print_json

SinceOption = Annotated[
    str | None,
    typer.Option("--since", "--last", help="How far back: 7d, 12h, or an ISO time."),
]
ServiceOption = Annotated[str | None, typer.Option("--service", help="Only this service.")]
EventOption = Annotated[
    str | None, typer.Option("--event", help="Only this event, e.g. operation.")
]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most N events.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_CHAIN_FIELDS = ("ts", "seq", "event", "prev", "mac")
VALUE_LIMIT = 200


def _local_midnight(days_ago: int) -> datetime:
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days_ago)).astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _line(record: dict[str, Any]) -> str:
    """One line per record; every value is safe to show (reasons and names are the agent's)."""
    from airlock.common.text import untrusted_line

    def shown(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        return untrusted_line(str(text), VALUE_LIMIT)

    details = " ".join(
        f"{shown(key)}={shown(value)}" for key, value in record.items() if key not in _CHAIN_FIELDS
    )
    ts, seq, event = (shown(record.get(key, "?")) for key in ("ts", "seq", "event"))
    return f"{ts}  #{seq}  {event}  {details}"


def _list(
    state: CliState,
    *,
    since: str | None,
    until: datetime | None,
    service: str | None,
    event: str | None,
    limit: int,
    as_json: bool,
) -> None:
    from airlock.cli.client_support import with_client

    # Open-ended (up to now): the newest events, so records written in a burst cannot
    # push the latest out of view. A closed day (until): its first events.
    newest = until is None
    events = with_client(
        state,
        lambda c: c.audit(since=since, service=service, event=event, limit=limit, newest=newest),
    ).events
    records: list[dict[str, Any]] = list(events)
    if until is not None:
        records = [r for r in records if str(r.get("ts", "")) < _iso(until)]
    if len(events) >= limit and len(records) == len(events):
        which = "newest" if newest else "first"
        typer.echo(
            f"showing the {which} {limit} events; more match: raise --limit or narrow --since",
            err=True,
        )
    if as_json:
        print_json(records)
        return
    if not records:
        typer.echo("no audit events")
    for record in records:
        typer.echo(_line(record))


def daemon_audit_seq(state: CliState) -> int | None:
    """How far the log is known to reach: what the running daemon says it wrote, or the
    anchor it keeps in the state database; None when neither can be read.

    A hash chain cannot show records deleted from its end; the daemon's own count can.
    """
    import contextlib
    import sqlite3

    from airlock.cli.status import daemon_facts
    from airlock.errors import AirlockError

    known: list[int] = []
    with contextlib.suppress(AirlockError):
        facts = daemon_facts(state)
        if facts["running"]:
            known.append(int(facts["audit_seq"]))
    if state.paths.state_db.exists():
        from airlock.state.store import StateStore

        try:
            with StateStore(state.paths.state_db) as store:
                known.append(store.audit_anchor())
        except (OSError, sqlite3.Error, AirlockError):
            pass  # isolated mode: the state belongs to the daemon's user
    return max(known) if known else None


def cut_off_end(last_seq: int, written: int | None) -> str | None:
    """Why the log is short, when the daemon wrote further than the files reach."""
    if written is None or last_seq >= written:
        return None
    return (
        f"records after seq {last_seq} are missing: the daemon wrote up to seq {written}, "
        "so records were cut off the end"
    )


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(
        name="audit",
        help="Read the audit trail, or check that nobody changed it.",
        invoke_without_command=True,
    )

    @audit_app.callback()
    def listing(
        ctx: typer.Context,
        since: SinceOption = None,
        service: ServiceOption = None,
        event: EventOption = None,
        limit: LimitOption = 100,
        as_json: JsonOption = False,
    ) -> None:
        """Audit events, oldest first (the last day unless --since says otherwise); past
        --limit, the newest."""
        if ctx.invoked_subcommand is None:
            _list(
                ctx.obj,
                since=since or "1d",
                until=None,
                service=service,
                event=event,
                limit=limit,
                as_json=as_json,
            )

    @audit_app.command("today")
    def today(
        ctx: typer.Context,
        service: ServiceOption = None,
        event: EventOption = None,
        limit: LimitOption = 1000,
        as_json: JsonOption = False,
    ) -> None:
        """Events since local midnight."""
        since = _iso(_local_midnight(0))
        _list(
            ctx.obj,
            since=since,
            until=None,
            service=service,
            event=event,
            limit=limit,
            as_json=as_json,
        )

    @audit_app.command("yesterday")
    def yesterday(
        ctx: typer.Context,
        service: ServiceOption = None,
        event: EventOption = None,
        limit: LimitOption = 10_000,
        as_json: JsonOption = False,
    ) -> None:
        """Events of the previous local day."""
        _list(
            ctx.obj,
            since=_iso(_local_midnight(1)),
            until=_local_midnight(0),
            service=service,
            event=event,
            limit=limit,
            as_json=as_json,
        )

    @audit_app.command("verify")
    def verify(ctx: typer.Context, as_json: JsonOption = False) -> None:
        """Check the hash chain of every audit file; name the first bad line."""
        from airlock.security.audit import query, verify_dir

        state: CliState = ctx.obj
        # Asked first: the daemon only appends, so the files must reach at least this seq.
        written = daemon_audit_seq(state)
        result = verify_dir(state.paths.audit_dir, state.paths.audit_key_file)
        cut = cut_off_end(result.last_seq, written) if result.ok else None
        if cut is None and result.ok:
            # A cut the daemon found at a restart stays on record in the log itself.
            found = query(state.paths.audit_dir, event="audit_cut_detected", limit=1)
            if found:
                cut = cut_off_end(int(found[0]["found"]), int(found[0]["expected_at_least"]))
        if as_json:
            report = result.to_dict()
            report["daemon_audit_seq"] = written
            if cut is not None:
                report["ok"] = False
                report["problem"] = {"reason": cut}
            print_json(report)
        elif cut is not None:
            typer.echo(f"TAMPERED: {cut}")
        elif result.ok:
            typer.echo(f"ok: {result.records} records in {len(result.files)} file(s), chain intact")
        else:
            assert result.problem is not None
            typer.echo(f"TAMPERED: {result.problem}")
            typer.echo(
                f"{result.records} records before it verified; nothing after it can be trusted",
                err=True,
            )
        if not result.ok or cut is not None:
            raise typer.Exit(1)

    app.add_typer(audit_app)
