"""Approvals through Signal on an in-process runtime (real approvals, audit, TOTP and
notifier; a clock the test moves), against the local signal-cli-rest-api in both modes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import airlock_notify_signal.plugin as signal_plugin
from airlock.daemon.runtime import Runtime
from tests.notifier_harness.runtime import (
    Phone,
    ask,
    audit_events,
    make_runtime,
    run_scenario,
    status_of,
)
from tests.notifier_harness.waiting import eventually
from tests.signal.conftest import settings_for
from tests.signal.signal_api_server import PERSON, STRANGER, SignalApiServer

Scenario = Callable[[Runtime, Phone], Awaitable[None]]


def run(tmp_path: Path, server: SignalApiServer, scenario: Scenario, **settings: Any) -> None:
    runtime, phone = make_runtime(
        tmp_path / "home", signal_plugin, "signal", settings_for(server, **settings)
    )
    run_scenario(runtime, phone, scenario)


async def prompt_of(server: SignalApiServer, code: str) -> int:
    await eventually(lambda: server.prompt_for(code))
    timestamp = server.prompt_for(code)
    assert timestamp is not None
    return timestamp


async def settled(server: SignalApiServer) -> None:
    """Everything sent before is handled once the answer to a /pending comes back."""
    count = sum(t.startswith(("Pending:", "Nothing is pending")) for t in server.texts())
    server.message("/pending")
    await eventually(
        lambda: (
            sum(t.startswith(("Pending:", "Nothing is pending")) for t in server.texts()) > count
        )
    )


def test_a_quote_reply_with_the_code_approves(tmp_path: Path, signal_api: SignalApiServer) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        other, created = await ask(runtime), await ask(runtime)
        await prompt_of(signal_api, other.code)
        signal_api.quote_reply(phone.code(), await prompt_of(signal_api, created.code))
        await eventually(lambda: len(runtime.approvals.pending()) == 1)
        assert await status_of(runtime, created) == "approved"
        assert [p.id for p in runtime.approvals.pending()] == [other.id]
        (verified,) = audit_events(runtime, "totp_verified")
        assert verified["channel"] == "signal"

    run(tmp_path, signal_api, scenario)


@pytest.mark.parametrize("emoji", ["👎", "👎🏽", "👎\ufe0f"])
def test_a_thumbs_down_reaction_denies(
    tmp_path: Path, signal_api: SignalApiServer, emoji: str
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        signal_api.react(emoji, await prompt_of(signal_api, created.code))
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "denied"

    run(tmp_path, signal_api, scenario)


def test_other_reactions_receipts_and_removals_do_nothing(
    tmp_path: Path, signal_api: SignalApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await prompt_of(signal_api, created.code)
        signal_api.react("👍", prompt)
        signal_api.react("👎", prompt, remove=True)
        signal_api.receipt(prompt)
        await settled(signal_api)
        assert [p.id for p in runtime.approvals.pending()] == [created.id]

    run(tmp_path, signal_api, scenario)


def test_deny_in_a_quote_reply_denies(tmp_path: Path, signal_api: SignalApiServer) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        signal_api.quote_reply("deny", await prompt_of(signal_api, created.code))
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "denied"

    run(tmp_path, signal_api, scenario)


def test_another_sender_or_a_group_is_ignored_and_audited(
    tmp_path: Path, signal_api: SignalApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await prompt_of(signal_api, created.code)
        code = phone.code()
        signal_api.quote_reply(code, prompt, source=STRANGER, uuid="stranger-uuid")
        signal_api.react("👎", prompt, source=None, uuid="hidden-number-uuid")
        signal_api.quote_reply(code, prompt, group=True)
        await settled(signal_api)
        senders = [e["sender"] for e in audit_events(runtime, "reply_ignored")]
        assert senders == [STRANGER, "hidden-number-uuid", f"{PERSON} in a group"]
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "approval_failed")
        signal_api.quote_reply(code, prompt)  # the code is still the person's to use
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"

    run(tmp_path, signal_api, scenario)


def test_the_persons_uuid_counts_when_the_number_is_hidden(
    tmp_path: Path, signal_api: SignalApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        prompt = await prompt_of(signal_api, created.code)
        signal_api.quote_reply(phone.code(), prompt, source=None, uuid="person-aci")
        await eventually(lambda: not runtime.approvals.pending())
        assert await status_of(runtime, created) == "approved"

    run(tmp_path, signal_api, scenario, recipient_uuid="person-aci")


def test_a_queue_from_before_the_start_is_not_taken_as_answers(
    tmp_path: Path, signal_api: SignalApiServer
) -> None:
    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        signal_api.quote_reply(phone.code(), await prompt_of(signal_api, created.code), age=3600)
        await settled(signal_api)
        assert [p.id for p in runtime.approvals.pending()] == [created.id]
        assert not audit_events(runtime, "approval_failed")

    run(tmp_path, signal_api, scenario)
