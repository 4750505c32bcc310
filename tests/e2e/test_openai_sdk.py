"""The official ``openai`` SDK through a real daemon: chat, embeddings and models at
``/v1/openai/llm``, the session token as its API key, streaming relayed chunk by chunk,
a budget that refuses before sending and cuts a runaway stream with an error event."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from daemon_harness import Airlock
from llm_harness import at_once, audit, budget_of, spend_session
from tests.openrouter.openrouter_server import OpenRouterServer

from airlock.client import AirlockClient
from airlock.models import Access

HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def token(llm: Airlock) -> str:
    with llm.client() as client:
        return spend_session(llm, client, 0.05)


def sdk(airlock: Airlock, key: str) -> openai.OpenAI:
    """What an agent writes: the OpenAI client pointed at Airlock's socket."""
    return openai.OpenAI(
        base_url="http://airlock/v1/openai/llm",
        api_key=key,
        http_client=httpx.Client(transport=httpx.HTTPTransport(uds=str(airlock.paths.socket))),
        max_retries=0,
    )


def test_the_openai_sdk_chats_embeds_and_lists_models_through_airlock(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    openrouter.answer_tokens = 3
    client = sdk(llm, token)
    completion = client.chat.completions.create(
        model="test/cheap",
        messages=HELLO,
        max_tokens=10,  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.content == "w w w "
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    embedded = client.embeddings.create(model="test/embed", input=["one", "two"])
    assert [e.index for e in embedded.data] == [0, 1]
    assert len(embedded.data[0].embedding) == 8
    models = [m.id for m in client.models.list()]
    assert models == ["test/cheap", "test/embed", "test/flat", "test/slow", "test/variable"]
    sent = openrouter.spending_calls()
    assert [c.path for c in sent] == ["/chat/completions", "/embeddings"]
    assert all(c.authorization == f"Bearer {openrouter.key}" for c in sent)  # the real key, added
    with llm.client() as plain:
        spent = budget_of(plain)["spent_usd"]
    assert spent == pytest.approx(
        completion.usage.model_extra["cost"] + embedded.usage.model_extra["cost"]  # type: ignore[index]
    )
    records = [e for e in audit(llm, "operation") if e["op"] in ("chat", "embed")]
    assert [(e["op"], e["outcome"]) for e in records] == [("chat", "ok"), ("embed", "ok")]
    assert all(e["cost_usd"] > 0 and set(e["params"]) == {"chars", "sha256"} for e in records)


def test_a_stream_is_relayed_as_each_chunk_arrives_and_settled_from_its_usage(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    openrouter.answer_tokens = 5
    openrouter.token_delay = 0.3
    client = sdk(llm, token)
    arrivals: list[float] = []
    text = ""
    usage: Any = None
    stream = client.chat.completions.create(
        model="test/cheap",
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "w " * 5
    # 0.3 s between tokens at the service: had Airlock buffered the answer, they would
    # have arrived together, not spread over the 1.2 s the service took (a slow machine
    # stalling the relay for up to 0.6 s still passes; buffering never does).
    assert arrivals[-1] - arrivals[0] > 0.6
    assert usage is not None
    with llm.client() as plain:
        assert budget_of(plain)["spent_usd"] == pytest.approx(usage.model_extra["cost"])
    [record] = [e for e in audit(llm, "operation") if e.get("stream")][-1:]
    assert record["outcome"] == "ok"
    assert record["completion_tokens"] == 5
    assert openrouter.spending_calls()[-1].body["stream"] is True  # type: ignore[index]


def test_streams_racing_for_the_last_cents_cannot_overspend(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    """Twelve streams at once on $0.05, each of test/flat's exact $0.01: five are served
    whole, seven refused (402) before anything of theirs is sent."""

    def agent() -> int:
        client = sdk(llm, token)
        try:
            stream = client.chat.completions.create(
                model="test/flat",
                messages=HELLO,  # type: ignore[arg-type]
                max_tokens=1000,
                stream=True,
            )
            for _chunk in stream:
                pass
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    assert at_once(12, agent) == [200] * 5 + [402] * 7
    assert len(openrouter.spending_calls()) == 5
    with llm.client() as plain:
        budget = budget_of(plain)
    assert budget["spent_usd"] == pytest.approx(0.05)
    assert (budget["left_usd"], budget["reserved_usd"]) == (0, 0)


def test_a_stream_running_past_its_reservation_ends_with_an_error_event(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    """A provider ignoring max_tokens: Airlock cuts it off at what was reserved."""
    openrouter.extra_tokens = 200
    client = sdk(llm, token)
    received = ""
    stream = client.chat.completions.create(
        model="test/flat",
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=5,
        stream=True,
    )

    def read_all() -> None:
        nonlocal received
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received += chunk.choices[0].delta.content

    with pytest.raises(openai.APIError, match="passed its reserved"):
        read_all()
    assert 0 < len(received) <= len("w ") * 6
    with llm.client() as plain:
        budget = budget_of(plain)
    assert budget["spent_usd"] == pytest.approx(0.00005)  # its reservation: 5 x $0.00001
    assert budget["reserved_usd"] == 0
    [record] = [e for e in audit(llm, "operation") if e.get("cut")][-1:]
    assert record["outcome"] == "cut"


def test_the_sdk_sees_a_spent_budget_as_an_error_and_nothing_is_sent(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    client = sdk(llm, token)
    for _ in range(5):  # test/flat: exactly $0.01 a call
        client.chat.completions.create(model="test/flat", messages=HELLO, max_tokens=1000)  # type: ignore[arg-type]
    sent = len(openrouter.spending_calls())
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="test/flat", messages=HELLO, max_tokens=1000)  # type: ignore[arg-type]
    assert refused.value.status_code == 402
    assert refused.value.body["code"] == "budget_exhausted"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as streamed:
        client.chat.completions.create(
            model="test/flat",
            messages=HELLO,  # type: ignore[arg-type]
            max_tokens=1000,
            stream=True,
        )
    assert streamed.value.status_code == 402
    assert len(openrouter.spending_calls()) == sent


def test_a_wrong_key_or_a_read_session_is_refused_like_openai_would(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    with pytest.raises(openai.AuthenticationError):
        sdk(llm, "alk_" + "A" * 43).models.list()
    with llm.client() as client:
        read = llm.session(client, services=["llm"], reason="which models are there")
    client_ = sdk(llm, read["token"])
    assert [m.id for m in client_.models.list()][:1] == ["test/cheap"]
    with pytest.raises(openai.PermissionDeniedError):
        client_.chat.completions.create(model="test/cheap", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client_.completions.create(model="test/cheap", prompt="legacy endpoint")
    assert openrouter.spending_calls() == []


def test_bad_openai_bodies_are_400s_naming_the_field(llm: Airlock, token: str) -> None:
    with llm.client(Authorization=f"Bearer {token}") as client:
        unknown = client.post(
            "/v1/openai/llm/chat/completions",
            json={"model": "test/cheap", "messages": HELLO, "models": ["other/model"]},
        )
        not_json = client.post("/v1/openai/llm/chat/completions", content=b"{nope")
        streamed_embeddings = client.post(
            "/v1/openai/llm/embeddings", json={"model": "test/embed", "input": "x", "stream": True}
        )
        odd_stream = {
            odd: client.post(
                "/v1/openai/llm/chat/completions",
                json={"model": "test/cheap", "messages": HELLO, "stream": odd},
            )
            for odd in ("true", 1, None)
        }
    assert unknown.status_code == 400
    assert unknown.json()["error"]["field"] == "params.models"
    assert not_json.status_code == 400
    assert json.loads(not_json.text)["error"]["field"] == "body"
    assert streamed_embeddings.status_code == 400
    assert streamed_embeddings.json()["error"]["field"] == "params.stream"
    for odd in ("true", 1, None):  # stream is true or false, as OpenAI's API has it
        assert odd_stream[odd].status_code == 400, odd_stream[odd].text
        assert odd_stream[odd].json()["error"]["field"] == "params.stream"
        assert "OpenAI-compatible endpoint" not in odd_stream[odd].text


def test_openai_routes_name_no_service_that_does_not_speak_openai(llm: Airlock) -> None:
    with llm.client(Authorization="Bearer alk_" + "A" * 43) as client:
        response = client.get("/v1/openai/mail/models")
    assert response.status_code == 404
    assert "no OpenAI endpoint" in response.json()["error"]["message"]


def approve_when_asked(airlock: Airlock, count: int) -> threading.Thread:
    """The person, on the terminal: approves the next *count* requests as they arrive."""

    def person() -> None:
        with airlock.client() as client:
            for _ in range(count):
                deadline = time.monotonic() + 30
                while not (pending := client.get("/v1/requests").json()["requests"]):
                    assert time.monotonic() < deadline, "no request arrived"
                    time.sleep(0.05)
                assert pending[0]["access"] == "spend"
                assert airlock.approve(client, pending[0]["code"]).status_code == 200

    thread = threading.Thread(target=person)
    thread.start()
    return thread


def test_airlock_client_and_the_async_sdk_spend_within_the_approved_budget(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    """The lines docs/openrouter.md shows, run as written."""
    openrouter.answer_tokens = 2
    person = approve_when_asked(llm, 2)

    async def agent() -> tuple[Any, Any, Any, Any]:
        async with AirlockClient(llm.paths.socket, agent="drafter") as airlock:
            held = await airlock.request_access(
                ["llm"], "draft replies to today's mail", access=Access.SPEND, budget_usd=0.05
            )
            answer = await airlock.llm.chat(model="test/cheap", messages=HELLO, max_tokens=5)
            usage = await airlock.llm.usage()
            async_sdk = openai.AsyncOpenAI(
                base_url="http://airlock/v1/openai/llm",
                api_key=held.token,
                http_client=httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(uds=str(airlock.socket))
                ),
                max_retries=0,
            )
            via_sdk = await async_sdk.chat.completions.create(
                model="test/cheap",
                messages=HELLO,  # type: ignore[arg-type]
                max_tokens=5,
            )
        # A client with no session asks for a spend session itself (as the MCP tools do).
        async with AirlockClient(llm.paths.socket) as fresh:
            asked = await fresh.invoke(
                "llm",
                "chat",
                {"model": "test/cheap", "messages": HELLO, "max_tokens": 5},
                reason="one more draft",
            )
        return answer, usage, via_sdk, asked

    answer, usage, via_sdk, asked = asyncio.run(agent())
    person.join()
    assert answer["choices"][0]["message"]["content"] == "w w "
    assert usage["budget"]["limit_usd"] == 0.05
    assert 0 < usage["budget"]["spent_usd"] < 0.05
    assert usage["budget"]["left_usd"] == pytest.approx(0.05 - usage["budget"]["spent_usd"])
    assert usage["key"]["limit_remaining_usd"] == 9.75
    assert via_sdk.choices[0].message.content == "w w "
    assert asked.result["choices"][0]["message"]["content"] == "w w "
    assert len(openrouter.spending_calls()) == 3


def test_an_agent_hanging_up_mid_stream_leaves_no_money_held(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    """The connection dropped after the first chunk: the upstream call is ended, the call
    counted at its reservation (it may have cost that much), and audited."""
    openrouter.answer_tokens = 50
    openrouter.token_delay = 0.1
    body = {"model": "test/cheap", "messages": HELLO, "max_tokens": 50, "stream": True}
    with (
        llm.client(Authorization=f"Bearer {token}") as client,
        client.stream("POST", "/v1/openai/llm/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break  # leaving the block closes the connection mid-answer
    deadline = time.monotonic() + 10
    while True:
        with llm.client() as plain:
            budget = budget_of(plain)
        if budget["reserved_usd"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert budget["reserved_usd"] == 0
    records = [e for e in audit(llm, "operation") if e.get("stream")]
    assert records
    assert records[-1]["outcome"] == "error"
    assert budget["spent_usd"] == pytest.approx(records[-1]["reserved_usd"])
    # The call's record is written once it is settled, and says what it cost.
    assert records[-1]["cost_usd"] == records[-1]["reserved_usd"]
    assert records[-1]["budget_left_usd"] == pytest.approx(budget["left_usd"])
    assert "Traceback" not in llm.daemon.log.read_text()


def test_a_stream_the_service_refuses_costs_nothing(
    llm: Airlock, openrouter: OpenRouterServer, token: str
) -> None:
    """OpenRouter answers a streamed call with an error status before any chunk (rate
    limit, no credit, its own failure): nothing was generated, so nothing is counted."""
    client = sdk(llm, token)
    refusals: list[tuple[int, type[openai.APIStatusError]]] = [
        (429, openai.RateLimitError),
        (402, openai.APIStatusError),
        (503, openai.InternalServerError),
    ]
    for status, error in refusals:
        openrouter.fail("/chat/completions", status)
        with pytest.raises(error):
            client.chat.completions.create(
                model="test/flat",
                messages=HELLO,  # type: ignore[arg-type]
                max_tokens=1000,
                stream=True,
            )
    with llm.client() as plain:
        budget = budget_of(plain)
    assert (budget["spent_usd"], budget["reserved_usd"]) == (0, 0)
    records = [e for e in audit(llm, "operation") if e.get("stream")]
    assert [e["cost_usd"] for e in records] == [0, 0, 0]


def test_revoking_the_session_ends_a_stream_in_flight(
    llm: Airlock, openrouter: OpenRouterServer
) -> None:
    """The person revokes the spend session while its answer still streams (200 tokens,
    10 s); another session keeps the service open. The rest is not relayed: the stream
    ends with an error event, and the call is counted at its reservation."""
    openrouter.answer_tokens = 200
    openrouter.token_delay = 0.05
    with llm.client() as plain:
        llm.session(plain, services=["llm"], reason="list the models")  # stays
        spend = llm.session(
            plain, services=["llm"], access="spend", budget_usd=0.05, reason="draft"
        )
    body = {"model": "test/cheap", "messages": HELLO, "max_tokens": 200, "stream": True}
    events: list[dict[str, Any]] = []
    with (
        llm.client() as person,
        llm.client(Authorization=f"Bearer {spend['token']}") as client,
        client.stream("POST", "/v1/openai/llm/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line.removeprefix("data: ")))
                if len(events) == 1:
                    assert person.delete(f"/v1/sessions/{spend['id']}").status_code == 200
    assert "error" in events[-1], events[-1]
    assert events[-1]["error"]["code"] == "unauthenticated"
    assert len(events) < 150, "the answer went on after the revocation"
    with llm.client() as plain:
        budget = [s for s in plain.get("/v1/sessions").json()["sessions"] if s["id"] == spend["id"]]
    [record] = [e for e in audit(llm, "operation") if e.get("stream")]
    assert (record["outcome"], record["error"]) == ("error", "unauthenticated")
    assert record["cost_usd"] == record["reserved_usd"]
    assert budget == []  # revoked: no longer listed
