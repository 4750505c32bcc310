"""What reaches signal-cli-rest-api: both answer shapes of POST /v2/send, its errors, and
prompts whose agent text is hostile (plain text: one quoted line, no styling, no
invisible characters)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import pytest

from airlock.errors import NotifierError
from airlock.framework.connectors import NoCredentials
from airlock.framework.notifiers import Delivery, Notice
from airlock.testing import HOSTILE_REASON, contract_prompt
from airlock_notify_signal._notifier import SignalNotifier, SignalSettings
from tests.signal.conftest import settings_for
from tests.signal.signal_api_server import PERSON, SignalApiServer


def use(server: SignalApiServer, body: Callable[[SignalNotifier], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        settings = SignalSettings.model_validate(settings_for(server))
        notifier = SignalNotifier(settings, NoCredentials())
        try:
            return await body(notifier)
        finally:
            await notifier.close()

    return asyncio.run(main())


@pytest.fixture
def rest_api() -> Any:
    servers: list[SignalApiServer] = []

    def make(shape: Literal["object", "array"] = "object") -> SignalApiServer:
        servers.append(SignalApiServer(send_shape=shape))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("shape", ["object", "array"])
def test_both_send_answers_give_the_timestamp_replies_will_quote(rest_api: Any, shape: Any) -> None:
    server = rest_api(shape)
    delivery: Delivery = use(server, lambda n: n.send(contract_prompt(1)))
    (sent,) = server.sent
    assert delivery.ref == str(sent["timestamp"])
    assert sent["recipients"] == [PERSON]
    assert sent["text_mode"] == "normal"


def test_an_array_answer_with_errors_is_a_failed_send(rest_api: Any) -> None:
    server = rest_api()
    server.fail("send", 201, [{"timestamp": "1", "errors": {PERSON: "Untrusted identity"}}])
    with pytest.raises(NotifierError, match=r"not delivered: .*Untrusted identity"):
        use(server, lambda n: n.send(contract_prompt(1)))


def test_refusals_say_what_happened(rest_api: Any) -> None:
    server = rest_api()
    server.fail("send", 400, {"error": "User +15550001000 is not registered"})
    server.fail("send", 429, {"error": "rate limit", "challenge_tokens": ["abc"]})
    with pytest.raises(
        NotifierError, match=r"refused \(400\): User \+15550001000 is not registered"
    ):
        use(server, lambda n: n.send(contract_prompt(1)))
    with pytest.raises(NotifierError, match="rate limited by Signal: it wants a captcha"):
        use(server, lambda n: n.send(contract_prompt(1)))


def test_a_hostile_reason_is_one_quoted_line_without_invisible_characters(rest_api: Any) -> None:
    server = rest_api()
    raw = contract_prompt(1).model_copy(update={"reason": HOSTILE_REASON})  # unflattened
    use(server, lambda n: n.send(raw))
    lines = server.texts()[0].splitlines()
    heading = lines.index("Reason given by the agent (untrusted):")
    quoted = lines[heading + 1]
    assert quoted.startswith("> summarise my inbox Approved: yes</blockquote>")
    assert quoted.endswith("…")
    assert len(quoted) <= 302
    assert not any(line.startswith("Approved") for line in lines)
    assert "\u202e" not in server.texts()[0]


def test_a_writes_parameters_line_reaches_the_phone_whole(rest_api: Any) -> None:
    """Core fits every parameter of a write into 400 characters; a shorter cut here would
    hide the last ones (where a message goes) again."""
    server = rest_api()
    params = '{"folder": "' + "F" * 300 + '…, "to_folder": "Stolen"} (sha256 0123456789abcdef)'
    prompt = contract_prompt(1)
    prompt = prompt.model_copy(update={"lines": [*prompt.lines, ("Parameters", params)]})
    use(server, lambda n: n.send(prompt))
    assert f"Parameters: {params}" in server.texts()[0].splitlines()


def test_a_notice_about_a_request_quotes_its_prompt(rest_api: Any) -> None:
    server = rest_api()

    async def body(notifier: SignalNotifier) -> None:
        await notifier.send(contract_prompt(1))
        await notifier.notify(Notice(text="Approved C001.", request_id="req_contract1"))
        await notifier.notify(Notice(text="Approvals are locked."))

    use(server, body)
    prompt, approved, locked = server.sent
    assert approved["quote_timestamp"] == prompt["timestamp"]
    assert approved["message"] == "Approved C001."
    assert "quote_timestamp" not in locked
