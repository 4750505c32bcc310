"""What core does with messages from a phone channel beyond codes: quick commands,
strangers' messages, outcomes shown on the prompt, and the channel's own health."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway_fixtures import Phone
from test_approvals import ME, ask, audit_events, code_at, run, settle

from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.framework.notifiers import Notice, Reply


def say(phone: Phone, text: str, *, known: bool = True, sender: str = "me") -> None:
    phone.inbox.put_nowait(
        Reply(sender=sender, text=text, received_at=datetime.now(UTC), known_sender=known)
    )


def test_pending_lists_the_waiting_requests_by_code(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        say(phone, "/pending")
        await settle()
        assert phone.notices[-1] == "Nothing is pending."
        first, second = await ask(runtime), await ask(runtime, services=["notes"])
        say(phone, "/pending@airlock_bot")
        await settle()
        listing = phone.notices[-1]
        assert listing.startswith("Pending: ")
        assert first.code in listing
        assert second.code in listing
        assert "5 min left" in listing or "4 min left" in listing

    run(tmp_path, scenario)


def test_revoke_ends_every_active_session_and_audits_each(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        mine, _ = runtime.sessions.create(["notes"], "read", os.getuid())
        other, _ = runtime.sessions.create(["notes"], "read", os.getuid() + 1)
        say(phone, "/revoke")
        await settle()
        assert phone.notices[-1] == "Revoked 2 session(s)."
        assert runtime.store.list_sessions(active_at=clock.now()) == []
        revoked = [e for e in audit_events(runtime) if e["event"] == "session_revoked"]
        assert {e["session"] for e in revoked} == {mine.id, other.id}
        assert {e["channel"] for e in revoked} == {"phone"}

    run(tmp_path, scenario)


def test_help_and_start_explain_how_to_answer(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        say(phone, "/start")
        await settle()
        assert "6-digit code" in phone.notices[-1]
        assert "/pending" in phone.notices[-1]

    run(tmp_path, scenario)


def test_a_strangers_code_is_ignored_and_audited_once_a_minute(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        for _ in range(3):
            say(phone, code_at(totp, clock), known=False, sender="user 666 in chat 666")
        await settle()
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert phone.notices == []  # a stranger gets no answer at all
        clock.advance(61)
        say(phone, "deny", known=False, sender="user 666 in chat 666")
        await settle()
        ignored = [e for e in audit_events(runtime) if e["event"] == "reply_ignored"]
        assert [(e["sender"], e["ignored_since_last"]) for e in ignored] == [
            ("user 666 in chat 666", 0),
            ("user 666 in chat 666", 2),
        ]
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not any(e["event"] == "approval_failed" for e in audit_events(runtime))

    run(tmp_path, scenario)


def test_decisions_tell_channels_the_outcome_of_the_request(tmp_path: Path) -> None:
    outcomes: list[Notice] = []

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        original = phone.notify

        async def record(notice: Notice) -> None:
            outcomes.append(notice)
            await original(notice)

        phone.notify = record  # type: ignore[method-assign]
        approved, denied = await ask(runtime), await ask(runtime, ttl="2h")
        phone.reply(code_at(totp, clock), in_reply_to="msg-1")
        phone.reply("deny", in_reply_to="msg-2")
        await settle()
        decided = {(n.request_id, n.outcome) for n in outcomes if n.outcome}
        assert decided == {(approved.id, "approved"), (denied.id, "denied")}

    run(tmp_path, scenario)


def test_status_shows_what_the_notifier_says_of_its_connection(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        phone.health = lambda: {  # type: ignore[method-assign]
            "ok": False,
            "detail": "unreachable: ConnectError (retrying in 8s)",
        }
        health = {h.name: h for h in runtime.status(ME).notifiers}
        assert not health["phone"].ok
        assert health["phone"].detail == "unreachable: ConnectError (retrying in 8s)"
        assert health["console"].ok

    run(tmp_path, scenario)


def test_a_failed_answer_does_not_stop_the_channel_listening(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        failing = True
        original = phone.notify

        async def flaky(notice: Notice) -> None:
            if failing:
                raise ConnectionError("phone unreachable")
            await original(notice)

        phone.notify = flaky  # type: ignore[method-assign]
        say(phone, "/pending")  # its answer cannot be sent
        await settle()
        failing = False
        phone.reply(code_at(totp, clock), in_reply_to="msg-1")
        await asyncio.sleep(0.05)
        await settle()
        state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=0)
        assert state.status == "approved"

    run(tmp_path, scenario)


def test_a_reply_to_a_message_that_is_no_open_prompt_approves_nothing(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await ask(runtime)
        phone.reply(code_at(totp, clock), in_reply_to="msg-from-before-a-restart")
        await settle()
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert phone.notices[-1] == (
            f"That message is not an open prompt. Reply to its prompt. Pending: {created.code}."
        )

    run(tmp_path, scenario)
