"""Approval scenarios every messenger passes, written once: an in-process runtime (real
approvals, audit, TOTP and notifier; a clock the test moves) against the local stand-in
of the messenger's API, driven through a :class:`MessengerDouble`.

A messenger's test module subclasses :class:`ApprovalScenarios` (and
:class:`HostileInputScenarios`); its package's conftest provides the ``messenger``
fixture, an adapter of its local server. What only one messenger has (Telegram's Deny
button and edited prompts, Signal's reactions) stays in that messenger's tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

import pytest

from airlock.api import AccessRequestCreated
from airlock.daemon.runtime import Runtime
from airlock.errors import AirlockError
from airlock.framework.notifiers import Reply
from airlock.security.replies import BARE_CODE_SETTLE, ReplyHandler
from tests.notifier_harness.runtime import (
    ME,
    Phone,
    ask,
    audit_events,
    make_runtime,
    run_scenario,
    status_of,
)
from tests.notifier_harness.waiting import eventually

Scenario = Callable[[Runtime, Phone], Awaitable[None]]


class MessengerDouble(Protocol):
    """A messenger's local server as the scenarios drive it: the person's side of a chat."""

    plugin: ModuleType
    """The notifier plugin under test, as its entry point names it."""
    channel: str
    """The notifier's name (in config and in the audit's ``channel``)."""

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The notifier's settings, pointed at the local server."""
        ...

    def credentials(self) -> dict[str, str] | None:
        """What goes in the vault for the notifier, if anything."""
        ...

    async def prompt(self, code: str) -> int:
        """The id of the prompt sent for request *code*, once it has been sent."""
        ...

    def say(self, text: str, *, to: int | None = None, age: float = 0.0) -> None:
        """The person writes *text*, answering the prompt *to* if given; *age* seconds ago."""
        ...

    def stranger_says(self, text: str) -> str:
        """Someone else writes *text* to the bot; the sender as the audit names them."""
        ...

    def others_answer(self, text: str, prompt: int) -> list[str]:
        """Everyone but the person, in the person's chat, answers *prompt* with *text* in
        every way the messenger allows; the senders the audit names (in order)."""
        ...

    def texts(self) -> list[str]:
        """What the bot has sent so far, as the person reads it."""
        ...


def play(
    tmp_path: Path,
    messenger: MessengerDouble,
    scenario: Scenario,
    settings: dict[str, Any] | None = None,
    **config: Any,
) -> None:
    """Run *scenario* on a runtime whose notifier is *messenger*'s (*settings* added to
    its settings, *config* to the daemon's)."""
    runtime, phone = make_runtime(
        tmp_path / "home",
        messenger.plugin,
        messenger.channel,
        messenger.settings(**(settings or {})),
        messenger.credentials(),
        **config,
    )
    run_scenario(runtime, phone, scenario)


def answers(messenger: MessengerDouble, start: str | tuple[str, ...]) -> list[str]:
    """What the bot sent that starts with *start*."""
    return [t for t in messenger.texts() if t.startswith(start)]


async def settled(messenger: MessengerDouble) -> None:
    """Everything the person sent before is handled once the answer to a /pending (sent
    after it) comes back: the notifier hands replies over in order."""
    listings = ("Pending:", "Nothing is pending")
    before = len(answers(messenger, listings))
    messenger.say("/pending")
    await eventually(lambda: len(answers(messenger, listings)) > before)


class ApprovalScenarios:
    """How the person approves and denies from the chat; uses the ``messenger`` fixture."""

    def test_a_reply_with_the_code_approves_its_own_prompt_among_several(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            other, created = await ask(runtime), await ask(runtime)
            await messenger.prompt(other.code)
            messenger.say(phone.code(), to=await messenger.prompt(created.code))
            await eventually(lambda: len(runtime.approvals.pending()) == 1)
            assert [p.id for p in runtime.approvals.pending()] == [other.id]
            state = await runtime.approvals.collect(created.id, created.claim, peer=ME, wait=5)
            assert state.status == "approved"
            assert state.session is not None
            (verified,) = audit_events(runtime, "totp_verified")
            assert (verified["request"], verified["channel"]) == (created.id, messenger.channel)
            await eventually(lambda: f"Approved {created.code}." in messenger.texts())

        play(tmp_path, messenger, scenario)

    def test_deny_in_a_reply_denies(self, tmp_path: Path, messenger: MessengerDouble) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            messenger.say("Deny", to=await messenger.prompt(created.code))
            await eventually(lambda: not runtime.approvals.pending())
            assert await status_of(runtime, created) == "denied"
            (denied,) = audit_events(runtime, "access_denied")
            assert denied["channel"] == messenger.channel

        play(tmp_path, messenger, scenario)

    def test_a_bare_code_approves_the_only_pending_request(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            await messenger.prompt(created.code)
            code = phone.code()
            messenger.say(f"{code[:3]} {code[3:]}")
            await eventually(lambda: not runtime.approvals.pending())
            assert await status_of(runtime, created) == "approved"

        play(tmp_path, messenger, scenario)

    def test_a_bare_code_with_two_requests_pending_asks_which(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            first, second = await ask(runtime), await ask(runtime)
            await messenger.prompt(second.code)
            messenger.say(phone.code())
            await eventually(lambda: answers(messenger, "Which request?"))
            (question,) = answers(messenger, "Which request?")
            assert first.code in question
            assert second.code in question
            assert len(runtime.approvals.pending()) == 2

        play(tmp_path, messenger, scenario)

    def test_a_bare_code_approves_nothing_just_after_the_agent_swapped_its_request(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        """The person reads a harmless request and types its code without replying; the
        agent meanwhile withdraws it and asks for something else. The code must not
        approve the request the person never read, whatever is pending alone by then."""

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            harmless = await ask(runtime, "read my echo")
            await messenger.prompt(harmless.code)
            await runtime.approvals.deny(harmless.id, peer=ME, channel="terminal")
            swapped = await ask(runtime, "something else entirely")
            prompt = await messenger.prompt(swapped.code)
            messenger.say(phone.code())
            await eventually(lambda: answers(messenger, "Which request?"))
            assert [p.id for p in runtime.approvals.pending()] == [swapped.id]
            assert not audit_events(runtime, "totp_verified")
            messenger.say(phone.code(), to=prompt)  # a reply to its prompt still approves
            await eventually(lambda: not runtime.approvals.pending())
            assert await status_of(runtime, swapped) == "approved"

        play(tmp_path, messenger, scenario)

    def test_a_bare_code_approves_nothing_just_after_another_request_timed_out(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            first = await ask(runtime)
            phone.clock.advance(200)
            second = await ask(runtime)
            await messenger.prompt(second.code)
            phone.clock.advance(110)  # the first timed out 10 s ago; the second waits
            assert [p.id for p in runtime.approvals.pending()] == [second.id]
            messenger.say(phone.code())
            await eventually(lambda: answers(messenger, "Which request?"))
            assert [p.id for p in runtime.approvals.pending()] == [second.id]
            assert first.code not in answers(messenger, "Which request?")[0]
            phone.clock.advance(BARE_CODE_SETTLE)  # alone long enough: a bare code again
            messenger.say(phone.code())
            await eventually(lambda: not runtime.approvals.pending())
            assert await status_of(runtime, second) == "approved"

        play(tmp_path, messenger, scenario)

    def test_answers_from_anyone_else_are_ignored_and_audited(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            prompt = await messenger.prompt(created.code)
            code = phone.code()
            before = len(messenger.texts())
            senders = messenger.others_answer(code, prompt)
            await settled(messenger)
            assert [e["sender"] for e in audit_events(runtime, "reply_ignored")] == senders
            assert [p.id for p in runtime.approvals.pending()] == [created.id]
            assert not audit_events(runtime, "approval_failed")
            assert len(messenger.texts()) == before + 1  # only the person's /pending answered
            messenger.say(code, to=prompt)  # the code was not consumed: still the person's
            await eventually(lambda: not runtime.approvals.pending())
            assert await status_of(runtime, created) == "approved"

        play(tmp_path, messenger, scenario)

    def test_wrong_codes_lock_approvals_and_the_phone_is_told(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            prompt = await messenger.prompt(created.code)
            for wrong in ("000000", "111111"):
                messenger.say(wrong, to=prompt)
            await eventually(lambda: any("too many wrong codes" in t for t in messenger.texts()))
            messenger.say(phone.code(), to=prompt)  # even a right code, while locked
            await eventually(lambda: answers(messenger, "Not approved: approvals are locked"))
            assert [p.id for p in runtime.approvals.pending()] == [created.id]

        play(tmp_path, messenger, scenario, approvals={"max_failures": 2})

    def test_pending_and_revoke_from_the_chat(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            waiting, approved = await ask(runtime), await ask(runtime)
            messenger.say(phone.code(), to=await messenger.prompt(approved.code))
            await eventually(lambda: len(runtime.approvals.pending()) == 1)
            state = await runtime.approvals.collect(approved.id, approved.claim, peer=ME, wait=1)
            assert state.session is not None
            await settled(messenger)
            (listing,) = answers(messenger, "Pending:")
            assert waiting.code in listing
            assert approved.code not in listing
            messenger.say("/revoke")
            await eventually(lambda: "Revoked 1 session(s)." in messenger.texts())
            assert all(s.revoked_at for s in runtime.sessions.list(ME.uid))
            (revoked,) = audit_events(runtime, "session_revoked")
            assert revoked["session"] == state.session.id

        play(tmp_path, messenger, scenario)

    def test_a_backlog_from_before_the_start_is_not_taken_as_answers(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            messenger.say(phone.code(), to=await messenger.prompt(created.code), age=3600)
            await settled(messenger)
            assert [p.id for p in runtime.approvals.pending()] == [created.id]
            assert not audit_events(runtime, "approval_failed")

        play(tmp_path, messenger, scenario)

    @pytest.mark.parametrize("held", ["before", "after"])
    def test_a_reply_in_hand_when_the_daemon_reloads_is_handled_once(
        self, tmp_path: Path, messenger: MessengerDouble, held: str
    ) -> None:
        """A reload (of a config whose poll timeout changed) replaces the notifier while
        the person's wrong code is being handled (held here *before* or *after* the
        daemon's own handling of it, as a slow send would). It counts toward the lockout
        once: not lost with the old notifier's listening, nor received again by the new
        notifier and counted twice. The next reply then goes to the new notifier, and
        approves."""
        settings = messenger.settings()
        runtime, phone, hold = holding(tmp_path, messenger, settings, before=held == "before")

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            prompt = await messenger.prompt(created.code)
            messenger.say("000000", to=prompt)
            await eventually(hold.holding.is_set)
            await reload(runtime, messenger, {**settings, "poll_timeout": 3})
            assert runtime.replies is not hold, "the new notifier answers to the new parts"
            hold.release.set()
            await eventually(lambda: audit_events(runtime, "approval_failed"))
            await eventually(lambda: runtime.listeners[messenger.channel].receiving)
            await settled(messenger)  # anything received again is handled by now
            (failed,) = audit_events(runtime, "approval_failed")
            assert failed["counted"] is True
            assert hold.handled == 1
            messenger.say(phone.code(), to=prompt)
            await eventually(lambda: not runtime.approvals.pending())
            assert await status_of(runtime, created) == "approved"

        run_scenario(runtime, phone, scenario)

    def test_a_reply_finished_across_a_reload_and_a_decision_elsewhere_take_turns(
        self, tmp_path: Path, messenger: MessengerDouble
    ) -> None:
        """The old notifier finishes the person's right code after a reload, through the
        approval service of before; a denial from the terminal comes meanwhile, through
        the new one. They take turns: the code approves, the denial finds nothing
        pending. Apart, each wrote its record (`totp_verified`, `access_denied`) and
        only one could change the request."""
        settings = messenger.settings()
        runtime, phone, hold = holding(tmp_path, messenger, settings, before=True)

        async def scenario(runtime: Runtime, phone: Phone) -> None:
            created = await ask(runtime)
            messenger.say(phone.code(), to=await messenger.prompt(created.code))
            await eventually(hold.holding.is_set)
            await reload(runtime, messenger, settings)
            hold.release.set()
            for _ in range(5):  # the old reply runs on until its code's record is written
                await asyncio.sleep(0)
            with pytest.raises(AirlockError):
                await runtime.approvals.deny(created.id, peer=None, channel="terminal")
            assert await status_of(runtime, created) == "approved"
            assert not audit_events(runtime, "access_denied")

        run_scenario(runtime, phone, scenario)


async def reload(runtime: Runtime, messenger: MessengerDouble, settings: dict[str, Any]) -> None:
    """``airlock reload`` of the runtime's config as it is (every notifier built anew)."""
    config = {
        "services": {"echo": {"connector": "echo"}},
        "approvals": {"notifiers": ["console", messenger.channel]},
        "notifiers": {messenger.channel: settings},
    }
    runtime.paths.config_file.write_text(json.dumps(config))
    before = runtime.notifiers[messenger.channel]
    await runtime.reload()
    assert runtime.notifiers[messenger.channel] is not before


def holding(
    tmp_path: Path, messenger: MessengerDouble, settings: dict[str, Any], *, before: bool
) -> tuple[Runtime, Phone, HeldReplies]:
    """A runtime whose notifier is *messenger*'s, its replies handled through a
    :class:`HeldReplies`."""
    runtime, phone = make_runtime(
        tmp_path / "home", messenger.plugin, messenger.channel, settings, messenger.credentials()
    )
    hold = HeldReplies(runtime.replies, before=before)
    runtime.replies = cast(ReplyHandler, hold)  # the listener starts with it
    return runtime, phone, hold


class HeldReplies:
    """The daemon's reply handler, holding the first reply it is given until
    ``release`` (*before* handing it on, or after): a reply in hand for as long as the
    test needs."""

    def __init__(self, inner: ReplyHandler, *, before: bool) -> None:
        self.inner = inner
        self.before = before
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.handled = 0

    async def handle(self, notifier: str, reply: Reply) -> None:
        first = not self.holding.is_set()
        self.holding.set()
        if first and self.before:
            await self.release.wait()
        await self.inner.handle(notifier, reply)
        self.handled += 1
        if first and not self.before:
            await self.release.wait()


class HostileInputScenarios:
    """Anyone can write to the bot: what the messenger's API hands over is hostile input.
    Over-long texts are bounded, and each time the person's next reply still approves
    (receiving went on). Uses the ``messenger`` fixture; a subclass sets the limits."""

    max_text: int
    """The notifier's cap on a text it hands to core."""
    long_text: int
    """A length of text over that cap which the messenger's API still delivers whole."""

    @pytest.fixture
    def handed(self, monkeypatch: pytest.MonkeyPatch) -> list[Reply]:
        """Every Reply the notifier hands to core, as core's reply handler gets it."""
        seen: list[Reply] = []
        original = ReplyHandler.handle

        async def handle(self: ReplyHandler, notifier: str, reply: Reply) -> None:
            seen.append(reply)
            await original(self, notifier, reply)

        monkeypatch.setattr(ReplyHandler, "handle", handle)
        return seen

    def test_long_texts_never_reach_core_and_a_strangers_is_still_audited(
        self, tmp_path: Path, messenger: MessengerDouble, handed: list[Reply]
    ) -> None:
        async def scenario(runtime: Runtime, phone: Phone) -> None:
            stranger = messenger.stranger_says("9" * self.long_text)
            messenger.say("1" * self.long_text)  # the person's own, too long: dropped
            await eventually(lambda: audit_events(runtime, "reply_ignored"), within=20)
            await approve_with_a_good_reply(runtime, phone, messenger)
            (ignored,) = audit_events(runtime, "reply_ignored")
            assert ignored["sender"] == stranger
            assert "9" * 64 not in str(ignored)

        play(tmp_path, messenger, scenario)
        assert self.long_text > self.max_text
        assert max(len(r.text) for r in handed) <= self.max_text
        assert [r.text for r in handed if not r.known_sender] == [""]
        assert not [r for r in handed if r.known_sender and r.text.startswith("111")]


async def approve_with_a_good_reply(
    runtime: Runtime, phone: Phone, messenger: MessengerDouble
) -> None:
    """A new request, approved by the person's reply: receiving still works."""
    created = await ask(runtime)
    messenger.say(phone.code(), to=await messenger.prompt(created.code))
    await eventually(lambda: not runtime.approvals.pending(), within=20)
    (verified,) = audit_events(runtime, "totp_verified")
    assert verified["request"] == created.id


async def still_pending_then_a_good_reply_approves(
    runtime: Runtime,
    phone: Phone,
    messenger: MessengerDouble,
    handed: list[Reply],
    created: AccessRequestCreated,
) -> None:
    """After input the notifier must skip: once the person's next message reaches core,
    *created* is still pending and nothing was verified; then their reply approves it."""
    messenger.say("/help")
    await eventually(lambda: any(r.text == "/help" for r in handed), within=20)
    assert [p.id for p in runtime.approvals.pending()] == [created.id]
    assert not audit_events(runtime, "totp_verified")
    messenger.say(phone.code(), to=await messenger.prompt(created.code))
    await eventually(lambda: not runtime.approvals.pending(), within=20)
    assert audit_events(runtime, "totp_verified")
