"""The "Acts on" line of a write's prompt (``Connector.describe``): the service's text,
sanitised and cut, shown to the person and never to the agent; a failure is a note on the
prompt, never a failed request. An in-process runtime with a real store and audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import Notebook, Phone
from test_approvals import ME, ask, audit_events, run, settle

from airlock.api import AccessRequestIn
from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.security.peers import Peer
from airlock.security.prompts import TARGET_LABEL, TARGET_LIMIT
from airlock.security.targets import UNKNOWN

AGENT = Peer(uid=54321, pid=None)
HOSTILE = "Invoice\n\x1b[31mTOTP: approved\u202e by admin " + "x" * 500


@pytest.fixture(autouse=True)
def descriptions() -> Iterator[dict[str, str]]:
    Notebook.described.clear()
    yield Notebook.described
    Notebook.described.clear()


def _save(name: str) -> dict[str, Any]:
    params = {"name": name, "text": "hello"}
    return {"service": "notes", "name": "save_note", "params": params}


async def _ask_as(runtime: Runtime, peer: Peer, name: str) -> Any:
    body = AccessRequestIn(services=["notes"], reason="save it", operation=_save(name))
    created = await runtime.approvals.create_request(body, peer)
    await settle()
    return created


def test_the_service_text_is_shown_to_the_person_sanitised_and_never_to_the_agent(
    tmp_path: Path, descriptions: dict[str, str]
) -> None:
    descriptions["a"] = HOSTILE

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        created = await _ask_as(runtime, AGENT, "a")
        assert "Invoice" not in created.model_dump_json()
        shown = dict(phone.sent[0].lines)[TARGET_LABEL]
        assert shown.startswith("Invoice [31mTOTP: approved by admin x")  # ESC: a space
        assert len(shown) <= TARGET_LIMIT
        assert not any(c in shown for c in "\n\x1b\u202e")
        # The requester's uid is never given it; the owner (or root) looking at another
        # uid's request is, like the person on a phone channel or the dashboard.
        assert [r.target for r in runtime.approvals.pending(AGENT)] == [None]
        assert [r.target for r in runtime.approvals.pending(ME)] == [shown]
        assert [r.target for r in runtime.approvals.pending(None)] == [shown]
        records = [e for e in audit_events(runtime) if e["event"] == "write_target_described"]
        assert [(e["shown"], e["chars"]) for e in records] == [(True, len(shown))]
        assert "Invoice" not in (runtime.paths.audit_dir / "audit.jsonl").read_text()

    run(tmp_path, scenario)


def test_the_phone_shows_the_whole_label_saying_the_text_is_untrusted(
    tmp_path: Path, descriptions: dict[str, str]
) -> None:
    """Telegram and Signal flatten a prompt's labels to a limit, which was 32: the label
    read ``Acts on (the service's text, un…``, its key word gone from over a hostile
    mail subject."""
    from airlock.framework.http_notifier import flatten_prompt

    descriptions["a"] = "Invoice 7"

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        await _ask_as(runtime, AGENT, "a")
        flat = flatten_prompt(phone.sent[0], value_limit=200)
        assert dict(flat.lines)[TARGET_LABEL] == "Invoice 7"
        assert all(label.endswith("untrusted)") for label, _ in flat.lines if "Acts" in label)

    run(tmp_path, scenario)


def test_a_failed_look_up_is_a_note_on_the_prompt_not_a_failed_request(
    tmp_path: Path, descriptions: dict[str, str]
) -> None:
    descriptions["b"] = "!"

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        await _ask_as(runtime, AGENT, "b")
        assert dict(phone.sent[0].lines)[TARGET_LABEL] == UNKNOWN
        assert [r.status for r in runtime.approvals.pending(ME)] == ["pending"]
        audit = (runtime.paths.audit_dir / "audit.jsonl").read_text()
        assert "secret-detail-9K" not in audit
        records = [e for e in audit_events(runtime) if e["event"] == "write_target_described"]
        assert [(e["shown"], e["chars"]) for e in records] == [(False, 0)]

    run(tmp_path, scenario)


def test_nothing_is_added_where_the_connector_describes_nothing(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        await _ask_as(runtime, AGENT, "c")  # a write the connector does not describe
        await ask(runtime)  # a read
        assert all(TARGET_LABEL not in dict(p.lines) for p in phone.sent)
        assert len(phone.sent) == 2
        assert "write_target_described" not in {e["event"] for e in audit_events(runtime)}

    run(tmp_path, scenario)


def test_a_reload_while_a_write_is_looked_up_does_not_lose_its_prompt(
    tmp_path: Path, descriptions: dict[str, str]
) -> None:
    """The prompt goes out once the service has said what the write acts on; a reload
    (or ``airlock unlock``) meanwhile replaces the approval service, and the old one's
    work must still reach the person: no one else would ever prompt for the request."""
    descriptions["slow"] = "Invoice 7"

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        Notebook.held = asyncio.Event()
        try:
            created = await _ask_as(runtime, AGENT, "slow")
            assert phone.sent == []  # still looking it up
            await runtime.reload()
            Notebook.held.set()
            await settle()
        finally:
            Notebook.held = None
        # The prompt went out through the channels of when it was asked for.
        prompts = [p for p in phone.sent if p.code == created.code]
        assert len(prompts) == 1
        assert dict(prompts[0].lines)[TARGET_LABEL] == "Invoice 7"

    run(tmp_path, scenario)
