"""Approvals through Signal on an in-process runtime against the local
signal-cli-rest-api in both modes: the scenarios every messenger passes, then Signal's
own (reactions, the person's UUID when their number is hidden)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.daemon.runtime import Runtime
from tests.notifier_harness.runtime import Phone, ask, audit_events, run_scenario, status_of
from tests.notifier_harness.scenarios import (
    ApprovalScenarios,
    answers,
    holding,
    play,
    reload,
    settled,
)
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import SignalDouble


class TestSignalApprovals(ApprovalScenarios):
    pass


@pytest.mark.parametrize("emoji", ["👎", "👎🏽", "👎\ufe0f"])
def test_a_thumbs_down_reaction_denies(tmp_path: Path, messenger: SignalDouble, emoji: str) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        messenger.server.react(emoji, await messenger.prompt(created.code))
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "denied"

    play(tmp_path, messenger, scenario)


def test_other_reactions_receipts_and_removals_do_nothing(
    tmp_path: Path, messenger: SignalDouble
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await messenger.prompt(created.code)
        messenger.server.react("👍", prompt)
        messenger.server.react("👎", prompt, remove=True)
        messenger.server.receipt(prompt)
        await settled(messenger)
        assert [p.id for p in runtime.approvals.pending()] == [created.id]

    play(tmp_path, messenger, scenario)


def test_the_persons_uuid_counts_when_the_number_is_hidden(
    tmp_path: Path, messenger: SignalDouble
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await messenger.prompt(created.code)
        messenger.server.quote_reply(phone.code(), prompt, source=None, uuid="person-aci")
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"

    play(tmp_path, messenger, scenario, settings={"recipient_uuid": "person-aci"})


def test_a_reply_to_two_prompts_sent_in_one_millisecond_approves_neither(
    tmp_path: Path, messenger: SignalDouble
) -> None:
    """A quote names a message by its timestamp only: when two prompts share one, a
    reply to the one the person read must not approve the other."""

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        read = await ask(runtime, "read my echo")
        shared = await messenger.prompt(read.code)
        messenger.server.same_millisecond()
        other = await ask(runtime, "something else entirely")
        assert await messenger.prompt(other.code) == shared
        messenger.say(phone.code(), to=shared)
        await eventually(lambda: answers(messenger, "That message is not an open prompt"))
        assert len(runtime.approvals.pending()) == 2
        assert not audit_events(runtime, "totp_verified")

    play(tmp_path, messenger, scenario)


def test_a_reply_that_came_while_core_handled_another_at_a_reload_is_not_lost(
    tmp_path: Path, messenger: SignalDouble
) -> None:
    """Signal hands a message over once. The person's right code came while core was
    still handling their wrong one, and the old notifier had read it (off the WebSocket
    or signal-cli's socket) when the daemon reloaded: the new notifier takes it over,
    and it approves."""
    settings = messenger.settings()
    runtime, phone, hold = holding(tmp_path, messenger, settings, before=False)

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await messenger.prompt(created.code)
        messenger.say("000000", to=prompt)
        await eventually(hold.holding.is_set)
        messenger.say(phone.code(), to=prompt)
        await eventually(messenger.server.all_handed_over)
        await reload(runtime, messenger, {**settings, "poll_timeout": 3})
        hold.release.set()
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"
        assert len(audit_events(runtime, "approval_failed")) == 1

    run_scenario(runtime, phone, scenario)
