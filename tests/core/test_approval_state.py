"""The approval state a hostile agent attacks, on an injected clock (no sleeps): expiry
decided by the clock at use time, collection by the requester only, revoke-all, purging
and request codes, write sessions."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import NOTES, Phone
from test_approvals import ME, approved, ask, audit_events, code_at, run, settle
from test_held_revocations import Locked
from test_phone_commands import say

from airlock.api import OperationRef
from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.errors import ApprovalRequired, Forbidden, NotPending, OutOfCodes
from airlock.security.approvals import CROCKFORD
from airlock.security.peers import Peer
from airlock.state.store import RevocationNotWritten

OTHER = Peer(uid=ME.uid + 1, pid=1)


def test_approving_a_request_past_its_expiry_is_refused_without_the_sweep(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        clock.advance(300)
        with pytest.raises(NotPending, match="expired"):
            await runtime.approvals.approve(
                created.code, code_at(totp, clock), peer=ME, channel="terminal"
            )
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert state.status == "expired"
        timed_out = [e["request"] for e in audit_events(runtime) if e["event"] == "access_denied"]
        assert timed_out == [created.id]

    run(tmp_path, scenario, approvals={"timeout": "5m"})


def test_collecting_past_the_collection_deadline_gives_no_session(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        await runtime.approvals.approve(
            created.code, code_at(totp, clock), peer=ME, channel="terminal"
        )
        clock.advance(300)
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert (state.status, state.session) == ("expired", None)
        assert runtime.store.list_sessions() == []

    run(tmp_path, scenario, approvals={"timeout": "5m"})


def test_another_uid_with_the_claim_cannot_collect_nor_use_up_the_handout(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        await runtime.approvals.approve(
            created.code, code_at(totp, clock), peer=ME, channel="terminal"
        )
        with pytest.raises(Forbidden, match="another user"):
            await runtime.approvals.collect(created.id, created.claim, peer=OTHER, wait=0)
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert state.session is not None

    run(tmp_path, scenario)


def test_phone_revoke_cancels_approved_requests_not_collected(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        await runtime.approvals.approve(
            created.code, code_at(totp, clock), peer=None, channel="phone"
        )
        say(phone, "/revoke")
        await settle()
        assert phone.notices[-1] == (
            "Revoked 0 session(s). Cancelled 1 approved request(s) not yet collected."
        )
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert (state.status, state.session) == ("revoked", None)
        cancelled = [e for e in audit_events(runtime) if e["event"] == "approval_revoked"]
        assert [(e["request"], e["channel"]) for e in cancelled] == [(created.id, "phone")]

    run(tmp_path, scenario)


@pytest.mark.parametrize("with_a_session", [True, False])
def test_revoke_all_the_database_refuses_still_cancels_approvals_not_collected(
    tmp_path: Path, with_a_session: bool
) -> None:
    """Another process holds the state database past the wait (or its disk is full)
    while the person revokes everything: the approved requests nobody collected yet are
    cancelled at once all the same, held in memory until a housekeeping round writes
    them, so no session can be collected after "revoke all" (whether the database
    refused a session's revocation first or the cancellation itself)."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        if with_a_session:
            runtime.sessions.create(("notes",), "read", ME.uid)
        created = await ask(runtime)
        await runtime.approvals.approve(
            created.code, code_at(totp, clock), peer=ME, channel="terminal"
        )
        locked = Locked(runtime)
        try:
            with pytest.raises(RevocationNotWritten):
                await runtime.approvals.revoke_all(uid=ME.uid, channel="terminal")
            assert runtime.approvals.uncollected(ME) == []
            with contextlib.suppress(sqlite3.Error):  # a round while the lock is held
                await runtime.housekeeping_round()
        finally:
            locked.release()
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert (state.status, state.session) == ("revoked", None)
        await runtime.housekeeping_round()
        assert runtime.store.held_cancellations == {}
        with contextlib.closing(sqlite3.connect(runtime.paths.state_db)) as other:
            row = other.execute("SELECT status FROM requests WHERE id = ?", (created.id,))
            assert row.fetchone() == ("revoked",)
        cancelled = [
            e["request"] for e in audit_events(runtime) if e["event"] == "approval_revoked"
        ]
        assert cancelled == [created.id]

    run(tmp_path, scenario)


def test_a_write_session_reads_nothing_and_writes_once(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        params = {"name": "todo", "text": "buy milk"}
        created = await ask(
            runtime,
            operation=OperationRef(service="notes", name="save_note", params=params),
            sensitive=True,
        )
        assert "Sensitive" not in phone.sent[0].as_text()
        grant = await approved(runtime, totp, clock, created)
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "todo"})
        await runtime.gateway.run(grant.token, ME, "notes", "save_note", params)
        assert NOTES == {"todo": "buy milk"}
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "todo"})

    run(tmp_path, scenario)


def test_finished_requests_are_purged_after_the_retention_and_their_codes_come_back(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        await runtime.approvals.deny(created.code, peer=ME, channel="terminal")
        clock.advance(3600)
        await runtime.approvals.purge_finished()
        assert runtime.store.get_request(created.id) is not None, "kept for the retention"
        clock.advance(86400)
        await runtime.approvals.purge_finished()
        assert runtime.store.get_request(created.id) is None
        assert created.code not in runtime.store.used_codes()
        purged = [e for e in audit_events(runtime) if e["event"] == "state_purged"]
        assert purged[0]["requests"] == 1

    run(tmp_path, scenario, approvals={"retention": "1d"})


def test_when_every_request_code_is_taken_a_new_request_is_refused_with_503(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        import itertools

        taken = ["".join(c) for c in itertools.product(CROCKFORD, repeat=4)]
        last = taken.pop()
        # Another connection to the same database fills it, as a year of requests would.
        with contextlib.closing(sqlite3.connect(runtime.paths.state_db)) as db, db:
            db.executemany(
                "INSERT INTO requests (id, code, claim_hash, fingerprint, services, access, "
                "reason, ttl, requester_uid, status, created_at, expires_at, decided_at) "
                "VALUES (?, ?, '', '', '[]', 'read', '', 60, 0, 'denied', 0, 0, 0)",
                [(f"req_{code}", code) for code in taken],
            )
        created = await ask(runtime)
        assert created.code == last, "the one free code is found"
        with pytest.raises(OutOfCodes, match="no free request code"):
            await ask(runtime, ttl="90m")  # not the same ask (that would join the first)

    run(tmp_path, scenario)


def test_repeated_identical_refusals_are_one_audit_record_per_minute_with_a_count(
    tmp_path: Path,
) -> None:
    from airlock.errors import RateLimited

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        grant = await approved(runtime, totp, clock, created)
        await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        for _ in range(50):
            with pytest.raises(RateLimited):
                await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        denied = [e for e in audit_events(runtime) if e["event"] == "operation_denied"]
        assert len(denied) == 1
        clock.advance(30)
        with pytest.raises(RateLimited):
            await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        clock.advance(31)
        await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        with pytest.raises(RateLimited):
            await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        denied = [e for e in audit_events(runtime) if e["event"] == "operation_denied"]
        assert [e["left_out"] for e in denied] == [0, 50]

    run(tmp_path, scenario, permissions={"rate_limit": 1})


def test_refusals_after_the_clock_is_set_back_are_recorded_again(tmp_path: Path) -> None:
    """The clock stepped back an hour (NTP, the person fixing it): the last record now
    looks an hour in the future. Refusals must not go unrecorded until it is reached."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        grant = await approved(runtime, totp, clock, await ask(runtime))
        note = {"name": "todo", "text": "pay"}
        with pytest.raises(Forbidden):
            await runtime.gateway.run(grant.token, ME, "notes", "save_note", note)
        clock.advance(-3600)
        for _ in range(3):
            with pytest.raises(Forbidden):
                await runtime.gateway.run(grant.token, ME, "notes", "save_note", note)
        clock.advance(59)
        with pytest.raises(Forbidden):
            await runtime.gateway.run(grant.token, ME, "notes", "save_note", note)
        clock.advance(2)
        with pytest.raises(Forbidden):
            await runtime.gateway.run(grant.token, ME, "notes", "save_note", note)
        denied = [e for e in audit_events(runtime) if e["event"] == "operation_denied"]
        assert [e["left_out"] for e in denied] == [0, 0, 3]

    run(tmp_path, scenario)


@pytest.mark.parametrize("waiting", ["sweep", "collect"])
def test_no_expiry_is_recorded_of_an_approval_revoked_while_the_expiry_waited(
    tmp_path: Path, waiting: str
) -> None:
    """The sweep (or a requester's poll) reads a request due to expire, then waits for
    the decisions' lock; revoke-all, holding it, cancels that approval meanwhile. No
    expiry may then be recorded: it was revoked, and its state says so."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        await runtime.approvals.approve(
            created.code, code_at(totp, clock), peer=ME, channel="terminal"
        )
        clock.advance(300)  # not collected in time: due for the sweep
        revoking = asyncio.ensure_future(runtime.approvals.revoke_everything(channel="phone"))
        await asyncio.sleep(0)  # revoke-all holds the lock, its first record being written
        if waiting == "sweep":
            await asyncio.gather(revoking, runtime.approvals.expire_due())
        else:
            poll = runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
            state = (await asyncio.gather(revoking, poll))[1]
            assert (state.status, state.session) == ("revoked", None)
        ended = [
            e["event"]
            for e in audit_events(runtime)
            if e.get("request") == created.id
            and e["event"] in ("approval_revoked", "approval_expired")
        ]
        assert ended == ["approval_revoked"]
        assert runtime.store.get_request(created.id).status == "revoked"

    run(tmp_path, scenario, approvals={"timeout": "5m"})
