"""A service's connector in the connector host is replaced (new credentials, a failed call)
without cutting off the calls running on it; locking the vault still closes it at once.

The host's server runs on one end of a real socket pair; the test speaks frames on the
other, as the core does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from tests.core.frames import frames_of
from tests.core.gateway_fixtures import Note, NoteParams
from tests.core.test_connector_host import _ask, _frame, _Served, in_loop

from airlock.connector_host.keys import seal_host_key
from airlock.connector_host.protocol import MAX_ANSWER_BYTES
from airlock.framework.connectors import Access, CheckResult, Connector, operation
from airlock.passphrase import key_from


class Token(BaseModel):
    token: str = ""


class Latch(Connector):
    """A service whose read waits until the test lets it answer."""

    name = "latch"
    title = "A service that answers when told"
    Credentials = Token
    entered: ClassVar[asyncio.Event]
    release: ClassVar[asyncio.Event]
    events: ClassVar[list[str]] = []
    serial = 0

    async def open(self) -> None:
        Latch.serial += 1
        self.serial = Latch.serial  # ids are reused once an object is gone; this is not
        Latch.events.append(f"open {self.serial}")

    async def close(self) -> None:
        Latch.events.append(f"close {self.serial}")

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, summary="ready")

    @operation(access=Access.READ, params=NoteParams, result=Note, description="Read a note.")
    async def read_note(self, params: NoteParams) -> Note:
        Latch.events.append(f"call {self.serial}")
        Latch.entered.set()
        await asyncio.wait_for(Latch.release.wait(), 5)
        return Note(name=params.name, text="still here")


def _reset() -> None:
    Latch.entered, Latch.release = asyncio.Event(), asyncio.Event()
    Latch.events.clear()


CONFIGURE = {"id": 1, "kind": "configure", "services": {"n": {"connector": "latch"}}}
READ = {"kind": "call", "service": "n", "operation": "read_note", "params": {"name": "a"}}


async def _start_read(pair: Any, rid: int) -> None:
    _, writer = pair
    writer.write(_frame({"id": rid, **READ}))
    await writer.drain()
    await asyncio.wait_for(Latch.entered.wait(), 5)


async def _reading(pair: Any) -> str:
    """Configure the service, start a read (request 2) that waits for the test, and
    return the serial of the connector it runs on."""
    assert "ok" in await _ask(pair, CONFIGURE)
    await _start_read(pair, 2)
    [serial] = [e.split()[1] for e in Latch.events if e.startswith("open")]
    return serial


@in_loop
async def test_new_credentials_do_not_cut_off_a_call_running_on_the_old_connector(
    tmp_path: Path,
) -> None:
    _reset()
    async with _Served(tmp_path, {"latch": Latch}) as pair:
        first = await _reading(pair)
        stored = await _ask(
            pair,
            {
                "id": 3,
                "kind": "set_credentials",
                "service": "n",
                "fields": {"token": "new"},
                "check": False,
            },
        )
        assert "ok" in stored
        assert f"close {first}" not in Latch.events, "closed under a running call"
        Latch.release.set()
        answer = await asyncio.wait_for(frames_of(pair[0], MAX_ANSWER_BYTES).next(), 5)
        assert answer == {"id": 2, "ok": {"result": {"name": "a", "text": "still here"}}}
        assert Latch.events[-1] == f"close {first}"  # retired once its call ended
        again = await _ask(pair, {"id": 4, **READ})
        assert again["ok"]["result"]["text"] == "still here"
        opened = [e.split()[1] for e in Latch.events if e.startswith("open")]
        assert opened == [first, str(int(first) + 1)]  # the next call got a new one


@in_loop
async def test_closing_idle_connectors_spares_one_in_use_but_not_one_no_session_covers(
    tmp_path: Path,
) -> None:
    _reset()
    async with _Served(tmp_path, {"latch": Latch}) as pair:
        first = await _reading(pair)
        idle = {"id": 3, "kind": "close_idle", "keep": ["n"], "idle_seconds": 0}
        assert (await _ask(pair, idle))["ok"] == {"closed": []}
        assert f"close {first}" not in Latch.events
        revoked = {"id": 4, "kind": "close_idle", "keep": [], "idle_seconds": 300}
        assert (await _ask(pair, revoked))["ok"] == {"closed": ["n"]}
        assert f"close {first}" in Latch.events, "a service no session covers stayed open"
        Latch.release.set()
        await asyncio.wait_for(frames_of(pair[0], MAX_ANSWER_BYTES).next(), 5)
        assert Latch.events.count(f"close {first}") == 1


class SlowOpen(Latch):
    """A service whose connector takes its time to open (a slow login)."""

    name = "slow"
    opening: ClassVar[asyncio.Event]
    opened: ClassVar[asyncio.Event]

    async def open(self) -> None:
        await super().open()
        SlowOpen.opening.set()
        await asyncio.wait_for(SlowOpen.opened.wait(), 5)


@in_loop
async def test_locking_the_vault_closes_a_retired_connector_its_calls_still_run_on(
    tmp_path: Path,
) -> None:
    _reset()
    served = _Served(tmp_path, {"latch": Latch})
    async with served as pair:
        first = await _reading(pair)
        removed = {"id": 3, "kind": "set_credentials", "service": "n", "check": False}
        assert "ok" in await _ask(pair, {**removed, "fields": {"token": "new"}})
        assert f"close {first}" not in Latch.events  # retired: its call goes on
        seal_host_key(served.server.keys.directory, key_from("a passphrase"))
        assert (await _ask(pair, {"id": 4, "kind": "lock"}))["ok"] == {"locked": True}
        assert f"close {first}" in Latch.events, "the vault is locked, the old key still in use"
        Latch.release.set()
        await asyncio.wait_for(frames_of(pair[0], MAX_ANSWER_BYTES).next(), 5)
        assert Latch.events.count(f"close {first}") == 1


@in_loop
async def test_a_session_revoked_closes_a_retired_connector_its_calls_still_run_on(
    tmp_path: Path,
) -> None:
    _reset()
    async with _Served(tmp_path, {"latch": Latch}) as pair:
        first = await _reading(pair)
        assert "ok" in await _ask(pair, {"id": 3, "kind": "discard", "service": "n"})
        revoked = {"id": 4, "kind": "close_idle", "keep": [], "idle_seconds": 300}
        assert (await _ask(pair, revoked))["ok"] == {"closed": ["n"]}
        assert f"close {first}" in Latch.events, "a service no session covers stayed open"
        Latch.release.set()
        await asyncio.wait_for(frames_of(pair[0], MAX_ANSWER_BYTES).next(), 5)
        assert Latch.events.count(f"close {first}") == 1


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "remove_credentials", "service": "n"},
        {"kind": "close_idle", "keep": [], "idle_seconds": 300},
        {"kind": "lock"},
    ],
)
@in_loop
async def test_credentials_gone_while_a_connector_opens_do_not_stay_in_it_for_later_calls(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    _reset()
    SlowOpen.opening, SlowOpen.opened = asyncio.Event(), asyncio.Event()
    served = _Served(tmp_path, {"slow": SlowOpen})
    async with served as pair:
        configure = {"id": 1, "kind": "configure", "services": {"n": {"connector": "slow"}}}
        assert "ok" in await _ask(pair, configure)
        stored = {"id": 2, "kind": "set_credentials", "service": "n", "check": False}
        assert "ok" in await _ask(pair, {**stored, "fields": {"token": "old"}})
        pair[1].write(_frame({"id": 3, **READ}))
        await pair[1].drain()
        await asyncio.wait_for(SlowOpen.opening.wait(), 5)  # opening with the old token
        [opening] = [e.split()[1] for e in Latch.events if e.startswith("open")]
        if change["kind"] == "lock":
            seal_host_key(served.server.keys.directory, key_from("a passphrase"))
        assert "ok" in await _ask(pair, {"id": 4, **change})
        SlowOpen.opened.set()
        Latch.release.set()
        answer = await asyncio.wait_for(frames_of(pair[0], MAX_ANSWER_BYTES).next(), 5)
        assert "error" in answer, "a call ran on credentials gone before it was answered"
        assert Latch.events[-1] == f"close {opening}", "the connector opened with them stayed open"
