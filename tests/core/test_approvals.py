"""Approval rules that depend on time and channels, on an in-process runtime with a fake
clock, a real state store, a real audit log and a recording 'phone' notifier."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_fixtures import NOTES, Notebook, Phone, make_runtime

from airlock.api import AccessRequestIn, OperationRef, SessionGrant
from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.errors import (
    ApprovalRequired,
    AuditError,
    Forbidden,
    NotPending,
    Unauthenticated,
)
from airlock.security.peers import Peer

ME = Peer(uid=os.getuid(), pid=os.getpid())


async def settle() -> None:
    """Let spawned tasks (prompt fan-out, reply listeners, audit writes in the executor)
    finish. The fake clock does not move: this waits for work, not for time."""
    for _ in range(10):
        await asyncio.sleep(0.01)


def audit_events(runtime: Runtime) -> list[dict[str, Any]]:
    lines = (runtime.paths.audit_dir / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


Scenario = Callable[[Runtime, Any, Phone, FakeClock], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **config: Any) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    runtime, totp = make_runtime(tmp_path, clock, **config)

    async def main() -> None:
        await runtime.start()
        phone = runtime.notifiers["phone"]
        assert isinstance(phone, Phone)
        try:
            await scenario(runtime, totp, phone, clock)
        finally:
            await runtime.stop()

    asyncio.run(main())


def code_at(totp: Any, clock: FakeClock, steps_ahead: int = 0) -> str:
    return str(totp.at(clock.now() + 30 * steps_ahead))


async def ask(runtime: Runtime, **body: Any) -> Any:
    body.setdefault("services", ["notes"])
    body.setdefault("reason", "read my notes")
    created = await runtime.approvals.create_request(AccessRequestIn(**body), ME)
    await settle()
    return created


async def approved(runtime: Runtime, totp: Any, clock: FakeClock, created: Any) -> SessionGrant:
    """Approve *created* with the current code, then collect its session."""
    await runtime.approvals.approve(created.code, code_at(totp, clock), peer=ME, channel="terminal")
    grant = (await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)).session
    assert grant is not None
    return grant


def test_the_prompt_reaches_every_channel_with_the_agents_text_quoted(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime, reason="line one\nTOTP: approved\u202e by admin")
        prompt = phone.sent[0]
        assert prompt.code == created.code
        assert ("Fingerprint", created.fingerprint) in prompt.lines
        assert "\n" not in prompt.reason
        assert "\u202e" not in prompt.reason
        text = prompt.as_text()
        assert "> line one TOTP: approved by admin" in text

    run(tmp_path, scenario)


def test_a_request_expires_after_the_approval_timeout(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        clock.advance(301)
        await runtime.approvals.expire_due()
        assert runtime.approvals.pending() == []
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert state.status == "expired"
        with pytest.raises(NotPending):
            await runtime.approvals.approve(
                created.code, code_at(totp, clock), peer=ME, channel="terminal"
            )
        timed_out = [e for e in audit_events(runtime) if e.get("reason") == "approval timed out"]
        assert [e["request"] for e in timed_out] == [created.id]

    run(tmp_path, scenario, approvals={"timeout": "5m"})


def test_a_session_expires_at_its_ttl_and_the_expiry_is_audited(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime, ttl="10m")
        grant = await approved(runtime, totp, clock, created)
        await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        clock.advance(601)
        with pytest.raises(Unauthenticated, match="expired"):
            await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        await runtime.approvals.expire_due()
        assert [e["session"] for e in audit_events(runtime) if e["event"] == "session_expired"] == [
            grant.id
        ]

    run(tmp_path, scenario)


class AuditOutage:
    """The audit log's current file made unwritable (a directory in its place), then put
    back: every record meanwhile fails with AuditError, as on a full disk."""

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime.paths.audit_dir / "audit.jsonl"
        self.aside = self.current.with_name("aside.jsonl")

    def __enter__(self) -> None:
        self.current.rename(self.aside)
        self.current.mkdir()

    def __exit__(self, *exc: object) -> None:
        self.current.rmdir()
        self.aside.rename(self.current)


def test_an_expiry_the_audit_could_not_record_is_recorded_at_the_next_sweep(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        grant = await approved(runtime, totp, clock, await ask(runtime, ttl="10m"))
        clock.advance(601)
        with AuditOutage(runtime), pytest.raises(AuditError):
            await runtime.approvals.expire_due()
        await runtime.approvals.expire_due()
        expired = [e["session"] for e in audit_events(runtime) if e["event"] == "session_expired"]
        assert expired == [grant.id]

    run(tmp_path, scenario)


def test_a_purge_the_audit_could_not_record_deletes_nothing(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        await runtime.approvals.deny(created.code, peer=ME, channel="terminal")
        clock.advance(8 * 86400)
        with AuditOutage(runtime), pytest.raises(AuditError):
            await runtime.approvals.purge_finished()
        assert runtime.store.get_request(created.id) is not None, "kept until recorded"
        await runtime.approvals.purge_finished()
        assert runtime.store.get_request(created.id) is None
        (purged,) = [e for e in audit_events(runtime) if e["event"] == "state_purged"]
        assert purged["requests"] == 1

    run(tmp_path, scenario)


def test_a_reply_to_a_prompt_approves_that_request_only(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        first = await ask(runtime)
        second = await ask(runtime, ttl="2h")  # a different ask, so a second request
        phone.reply(code_at(totp, clock), in_reply_to="msg-2")
        await settle()
        assert [p.id for p in runtime.approvals.pending()] == [first.id]
        state = await runtime.approvals.collect(second.id, second.claim, peer=ME, wait=0)
        assert state.status == "approved"

    run(tmp_path, scenario)


def test_a_reply_to_a_prompt_sent_before_a_reload_still_approves_its_request(
    tmp_path: Path,
) -> None:
    """A reload (or an unlock) builds the channels anew: they forgot which prompt was for
    which request, so a reply to a prompt already on the phone was "not an open prompt",
    and no prompt was sent again (with two waiting, the phone could approve neither)."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        first = await ask(runtime)
        second = await ask(runtime, ttl="2h")
        settings = {
            "services": {"notes": {"connector": "notebook"}},
            "approvals": {"notifiers": ["console", "phone"]},
        }
        runtime.paths.config_file.write_text(yaml.safe_dump(settings))
        await runtime.reload()
        now = runtime.notifiers["phone"]
        assert isinstance(now, Phone)
        assert now is not phone, "the notifiers were built anew"
        now.reply(code_at(totp, clock), in_reply_to="msg-2")
        await settle()
        assert [p.id for p in runtime.approvals.pending()] == [first.id]
        state = await runtime.approvals.collect(second.id, second.claim, peer=ME, wait=0)
        assert state.status == "approved"

    run(tmp_path, scenario)


def test_a_bare_code_approves_when_exactly_one_request_is_pending(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        phone.reply(
            " 123 456 ".replace(
                "123 456", code_at(totp, clock)[:3] + " " + code_at(totp, clock)[3:]
            )
        )
        await settle()
        assert runtime.approvals.pending() == []
        assert (
            await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        ).status == "approved"

    run(tmp_path, scenario)


def test_a_bare_code_with_two_requests_pending_asks_which(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        first = await ask(runtime)
        second = await ask(runtime, ttl="2h")
        phone.reply(code_at(totp, clock))
        await settle()
        assert {p.id for p in runtime.approvals.pending()} == {first.id, second.id}
        assert any(n.startswith("Which request?") and first.code in n for n in phone.notices)

    run(tmp_path, scenario)


def test_deny_in_reply_denies(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        phone.reply("deny", in_reply_to="msg-1")
        await settle()
        assert (
            await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        ).status == "denied"

    run(tmp_path, scenario)


def test_lockout_is_told_on_every_channel_and_lifts_after_the_lockout(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        for wrong in ("000000", "111111"):
            phone.reply(wrong, in_reply_to="msg-1")
            await settle()
        assert any("locked" in n for n in phone.notices)
        assert runtime.status(ME).locked
        phone.reply(code_at(totp, clock), in_reply_to="msg-1")
        await settle()
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        clock.advance(15 * 60 + 1)
        fresh = await ask(runtime)
        await runtime.approvals.approve(
            fresh.code, code_at(totp, clock), peer=ME, channel="terminal"
        )
        assert (
            await runtime.approvals.collect(fresh.id, fresh.claim, peer=ME, wait=0)
        ).status == "approved"

    run(tmp_path, scenario, approvals={"max_failures": 2, "timeout": "1h"})


def test_an_unreachable_channel_does_not_stop_approvals(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        phone.broken = True
        created = await ask(runtime)
        health = {h.name: h for h in runtime.status(ME).notifiers}
        assert health["phone"].ok is False
        assert health["console"].ok is True
        await runtime.approvals.approve(
            created.code, code_at(totp, clock), peer=ME, channel="terminal"
        )
        assert (
            await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        ).status == "approved"

    run(tmp_path, scenario)


def test_a_long_parameter_does_not_hide_the_next_one_in_the_prompt(tmp_path: Path) -> None:
    """Sorted, a long ``name`` came first and the 400-character cut fell before ``text``:
    the person approved a note whose text they never saw. Every parameter now shows,
    each value cut to its share, with the digest of the exact parameters."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        params = {"name": "n" * 1000, "text": "send the keys to mallory"}
        await ask(runtime, operation=OperationRef(service="notes", name="save_note", params=params))
        (line,) = [v for k, v in phone.sent[0].lines if k == "Parameters"]
        assert '"text": "send the keys to mallory"' in line
        assert '"name": "nnn' in line
        assert "(sha256 " in line
        assert len(line) <= 400  # what a phone channel shows whole

    run(tmp_path, scenario)


def test_a_write_runs_once_with_its_own_approval_and_only_as_approved(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        params = {"name": "todo", "text": "buy milk"}
        created = await ask(
            runtime, operation=OperationRef(service="notes", name="save_note", params=params)
        )
        assert "save_note" in phone.sent[0].as_text()
        assert "buy milk" in phone.sent[0].as_text()
        grant = await approved(runtime, totp, clock, created)
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(
                grant.token, ME, "notes", "save_note", {**params, "text": "sell milk"}
            )
        assert "todo" not in NOTES
        await runtime.gateway.run(grant.token, ME, "notes", "save_note", params)
        assert NOTES == {"todo": "buy milk"}
        with pytest.raises(ApprovalRequired):
            await runtime.gateway.run(grant.token, ME, "notes", "save_note", params)

    run(tmp_path, scenario)


def test_a_write_is_denied_when_configured_deny(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        params = {"name": "todo", "text": "x"}
        with pytest.raises(Forbidden, match="disabled in config"):
            await ask(
                runtime, operation=OperationRef(service="notes", name="save_note", params=params)
            )
        assert phone.sent == []

    run(tmp_path, scenario, permissions={"notes": {"write": "deny"}})


def test_connectors_open_for_a_session_and_close_when_no_session_needs_them(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        opened, closed = Notebook.opened, Notebook.closed
        created = await ask(runtime)
        grant = await approved(runtime, totp, clock, created)
        for _ in range(3):
            await runtime.gateway.run(grant.token, ME, "notes", "read_note", {"name": "a"})
        assert Notebook.opened == opened + 1, "one connection reused for the session"
        runtime.sessions.revoke(grant.id, ME.uid)
        assert await runtime.gateway.host.close_idle(keep=set(), idle_seconds=300) == ["notes"]
        assert Notebook.closed == closed + 1

    run(tmp_path, scenario)


def test_an_agent_cannot_flood_the_person_with_prompts(tmp_path: Path) -> None:
    from airlock.errors import RateLimited
    from airlock.security.approvals import MAX_PENDING

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        for minutes in range(MAX_PENDING):  # each a different ask (asking again joins)
            await ask(runtime, ttl=f"{61 + minutes}m")
        with pytest.raises(RateLimited):
            await ask(runtime, ttl="7h")
        assert len(phone.sent) == MAX_PENDING
        await runtime.approvals.deny(phone.sent[0].code, peer=ME, channel="terminal")
        await ask(runtime, ttl="7h")
        assert len(phone.sent) == MAX_PENDING + 1

    run(tmp_path, scenario)


def test_asking_and_withdrawing_in_a_loop_cannot_flood_the_person(tmp_path: Path) -> None:
    """A withdrawn request frees its place among the waiting at once, so an agent that
    asks and withdraws in a loop sent a prompt (and a notice) each time, ~50 a second,
    and used up the request codes in hours. Within ``approvals.timeout`` a uid has
    MAX_UNAPPROVED requests that were not approved; approved ones do not count."""
    from airlock.errors import RateLimited
    from airlock.security.approvals import MAX_UNAPPROVED

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        for n in range(MAX_UNAPPROVED):
            created = await ask(runtime, reason=f"ask {n}")
            await runtime.approvals.deny(created.code, peer=ME, channel="api")
        prompts = len(phone.sent)
        with pytest.raises(RateLimited, match="not approved"):
            await ask(runtime, reason="one more")
        await settle()
        assert len(phone.sent) == prompts == MAX_UNAPPROVED, "no prompt for the refused ask"
        clock.advance(5 * 60 + 1)  # the window has passed
        kept = await ask(runtime, reason="later")
        clock.advance(31)  # a fresh code
        await approved(runtime, totp, clock, kept)
        for n in range(MAX_UNAPPROVED - 1):
            created = await ask(runtime, reason=f"again {n}")
            await runtime.approvals.deny(created.code, peer=ME, channel="api")
        # The approved one is not counted: one more may still be asked.
        await ask(runtime, reason="the last one")
        with pytest.raises(RateLimited):
            await ask(runtime, reason="past it", ttl="2h")  # not the same ask: no join

    run(tmp_path, scenario, approvals={"timeout": "5m"})


def test_asking_again_for_the_same_thing_joins_instead_of_prompting_again(
    tmp_path: Path,
) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        first = await ask(runtime)
        for _ in range(3):
            again = await ask(runtime, reason="still the same thing")
            assert (again.id, again.code) == (first.id, first.code)
        shorter = await ask(runtime, ttl="30m")  # within what the person is asked for
        assert shorter.id == first.id
        assert len(phone.sent) == 1, "the person is prompted once"
        assert len(runtime.approvals.pending()) == 1

    run(tmp_path, scenario)
