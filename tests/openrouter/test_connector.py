"""The openrouter connector against a local OpenRouter: prices, quotes, charges, streams
and every upstream error mapped, with the key never in an error."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from airlock.errors import (
    AirlockError,
    ConnectorAuthError,
    ConnectorError,
    Forbidden,
    InvalidInput,
    ServiceAnswerLost,
    ServiceOutOfCredit,
    ServiceRateLimited,
    ServiceRefused,
)
from airlock.framework.spending import Charge, Meter, Quote
from airlock.testing import run
from airlock_openrouter.connector import OpenRouterConnector
from tests.openrouter.conftest import connector_for
from tests.openrouter.openrouter_server import MODELS, Fault, OpenRouterServer

T = TypeVar("T")
HELLO = [{"role": "user", "content": "Say hello in one word."}]


def use(
    server: OpenRouterServer, body: Callable[[OpenRouterConnector], Awaitable[T]], **kw: Any
) -> T:
    async def main() -> T:
        connector = connector_for(server, **kw)
        await connector.open()
        try:
            return await body(connector)
        finally:
            await connector.close()

    return run(main())


def quote(server: OpenRouterServer, operation: str, params: dict[str, Any], **kw: Any) -> Quote:
    async def body(connector: OpenRouterConnector) -> Quote:
        parsed = connector.spec(operation).params.model_validate(params)
        return await connector.quote(operation, parsed)

    return use(server, body, **kw)


def test_list_models_shows_only_allowed_models_with_their_prices(
    server: OpenRouterServer,
) -> None:
    async def body(connector: OpenRouterConnector) -> Any:
        return (await connector.call("list_models", {})).model_dump()

    listed = use(server, body)
    ids = [m["id"] for m in listed["data"]]
    assert ids == ["test/cheap", "test/embed", "test/flat", "test/slow", "test/variable"]
    assert listed["object"] == "list"
    assert listed["data"][0]["pricing"]["completion"] == "0.000002"


def test_a_model_outside_the_allow_list_is_refused_before_anything_is_sent(
    server: OpenRouterServer,
) -> None:
    with pytest.raises(Forbidden, match="not allowed"):
        quote(server, "chat", {"model": "other/model", "messages": HELLO})
    assert server.spending_calls() == []


@pytest.mark.parametrize("model", ["test/no-such-model", "test/variable"])
def test_a_model_without_a_price_cannot_be_quoted(server: OpenRouterServer, model: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        quote(server, "chat", {"model": model, "messages": HELLO})
    assert raised.value.field == "model"


def test_the_worst_case_is_the_prompt_estimate_plus_max_tokens_at_the_model_price(
    server: OpenRouterServer,
) -> None:
    text = "x" * 300  # 300 bytes: at most 300 tokens, plus 8 for the message, 32 the chat's
    params = {"model": "test/cheap", "messages": [{"role": "user", "content": text}]}
    found = quote(server, "chat", {**params, "max_tokens": 50})
    assert Decimal(str(found.usd)) == Decimal("0.000001") * 340 + Decimal("0.000002") * 50
    assert found.facts == {"model": "test/cheap", "max_tokens": 50, "prompt_tokens_est": 340}
    # No max_tokens: the service's cap is the worst case (and is sent upstream).
    capped = quote(server, "chat", params, max_tokens=200)
    assert capped.facts["max_tokens"] == 200


def test_a_prompt_of_rare_characters_cannot_cost_more_than_its_quote(
    server: OpenRouterServer,
) -> None:
    """A tokeniser spends up to a token a byte on characters outside its vocabulary (the
    local server counts so): an agent choosing such text must not get calls that cost
    more than was reserved for them, which calls sent side by side would add up."""
    text = "\U00020000" * 1000  # 4,000 bytes, 4,000 tokens
    params = {
        "model": "test/cheap",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 20,
    }
    found = quote(server, "chat", params)

    async def body(connector: OpenRouterConnector) -> Charge:
        result = await connector.call("chat", params)
        parsed = connector.spec("chat").params.model_validate(params)
        return connector.charge("chat", parsed, result)

    charge = use(server, body)
    assert charge.usd > 0.004, "the service counted a token a byte"
    assert charge.usd <= found.usd


@pytest.mark.parametrize("count", [1, 100])
def test_short_messages_cannot_cost_more_than_their_quote(
    server: OpenRouterServer, count: int
) -> None:
    """A chat template frames each message (its role and delimiters: 5 tokens in Llama 3's,
    as the local server counts) and the chat (the answer's turn header): an agent sending
    many empty messages must not get calls that cost more than was reserved for them."""
    params = {
        "model": "test/cheap",
        "messages": [{"role": "user", "content": ""}] * count,
        "max_tokens": 1,
    }
    found = quote(server, "chat", params)
    charge = charged(server, params)
    assert charge.usd >= 0.000001 * (5 + 5 * count), "the service counted the framing"
    assert charge.usd <= found.usd


def test_the_id_a_tool_answer_refers_to_is_reserved_with_the_prompt(
    server: OpenRouterServer,
) -> None:
    """A template renders a tool answer's ``tool_call_id`` (up to 128 characters, a token
    a byte at worst, as the local server counts) into the prompt: it is reserved too."""
    call_id = "\U00020000" * 128  # 512 bytes
    params = {
        "model": "test/cheap",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "content": "", "tool_call_id": call_id},  # its call left out
        ],
        "max_tokens": 1,
    }
    found = quote(server, "chat", params)
    charge = charged(server, params)
    assert charge.usd >= 0.000001 * 512, "the service counted the id"
    assert charge.usd <= found.usd


@pytest.mark.parametrize(
    "part",
    ["tool call arguments", "tool descriptions"],
)
def test_what_a_template_writes_as_json_is_reserved_as_written(
    server: OpenRouterServer, part: str
) -> None:
    """Templates write tools and tool calls with ``tojson``: ``<`` becomes ``\\u003c`` (six
    bytes for one) and a call's arguments are read and written again (``1e15`` becomes
    ``1000000000000000.0``), so text an agent picks grows up to sixfold on its way to the
    model (the local server counts a token a byte of what is written)."""
    params: dict[str, Any] = {"model": "test/cheap", "max_tokens": 1}
    if part == "tool call arguments":
        call = {"id": "c1", "type": "function", "function": {"name": "f"}}
        call["function"]["arguments"] = json.dumps({"a": [1e15] * 200}).replace(
            "1000000000000000.0", "1e15"
        )  # type: ignore[index]
        params["messages"] = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    else:
        tool = {"type": "function", "function": {"name": "f", "description": "<" * 1000}}
        params["messages"] = [{"role": "user", "content": "hi"}]
        params["tools"] = [tool]
    found = quote(server, "chat", params)
    charge = charged(server, params)
    assert charge.usd >= 0.000001 * 3000, "the service counted what the template wrote"
    assert charge.usd <= found.usd


def test_a_lone_surrogate_in_a_message_is_quoted_not_a_failure(server: OpenRouterServer) -> None:
    """JSON's ``"\\ud800"`` reads into a character UTF-8 cannot hold: the quote counts it
    as its escape's six bytes instead of raising while it measured the prompt."""
    params = {"model": "test/cheap", "messages": [{"role": "user", "content": "x\ud800"}]}
    found = quote(server, "chat", {**params, "max_tokens": 1})
    assert found.facts["prompt_tokens_est"] == 1 + 6 + 8 + 32


def charged(server: OpenRouterServer, params: dict[str, Any]) -> Charge:
    async def body(connector: OpenRouterConnector) -> Charge:
        result = await connector.call("chat", params)
        parsed = connector.spec("chat").params.model_validate(params)
        return connector.charge("chat", parsed, result)

    return use(server, body)


@pytest.mark.parametrize("write_price", ["0.00000125", "0"])
def test_a_prompt_asking_to_be_cached_is_reserved_at_the_price_of_a_cache_write(
    server: OpenRouterServer, monkeypatch: pytest.MonkeyPatch, write_price: str
) -> None:
    """A part with ``cache_control`` (passed upstream) may be billed as a cache write: at
    ``input_cache_write`` where listed, and up to twice the prompt price (Anthropic's for
    an hour) whatever is listed."""
    [cheap] = [m for m in MODELS if m["id"] == "test/cheap"]
    monkeypatch.setitem(cheap, "pricing", {**cheap["pricing"], "input_cache_write": write_price})
    part = {"type": "text", "text": "x" * 4000, "cache_control": {"type": "ephemeral"}}
    params = {"model": "test/cheap", "messages": [{"role": "user", "content": [part]}]}
    found = quote(server, "chat", {**params, "max_tokens": 1})
    prompt = found.facts["prompt_tokens_est"]
    server.usage = {  # every prompt token written to the cache for an hour
        "prompt_tokens": prompt,
        "completion_tokens": 1,
        "cost": float(Decimal("0.000002") * prompt + Decimal("0.000002")),
    }
    assert charged(server, {**params, "max_tokens": 1}).usd <= found.usd
    sent = server.spending_calls()[-1].body
    assert sent is not None
    assert sent["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_tools_are_reserved_with_the_prompt_the_provider_adds_for_them(
    server: OpenRouterServer,
) -> None:
    """A model given tools also reads its provider's prompt for them (346 tokens for
    Claude's): a one-letter tool and "hi" must not cost several times their quote."""
    params = {
        "model": "test/cheap",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "max_tokens": 1,
    }
    found = quote(server, "chat", params)
    prompt = 346 + 60
    server.usage = {
        "prompt_tokens": prompt,
        "completion_tokens": 1,
        "cost": float(Decimal("0.000001") * prompt + Decimal("0.000002")),
    }
    assert charged(server, params).usd <= found.usd


def test_a_prompt_is_never_reserved_above_the_context_of_the_model(
    server: OpenRouterServer,
) -> None:
    """The service reads at most the model's context (8192 tokens here): a longer prompt
    is not reserved as more."""
    text = "x" * 20_000
    params = {"model": "test/cheap", "messages": [{"role": "user", "content": text}]}
    found = quote(server, "chat", {**params, "max_tokens": 50})
    assert found.facts["prompt_tokens_est"] == 8192


IMAGE = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}


def test_a_prompt_with_an_image_is_reserved_as_the_whole_context_of_the_model(
    server: OpenRouterServer,
) -> None:
    """An image (or audio, a file) is a few bytes of URL but may be thousands of tokens:
    its prompt is reserved at the most the model reads, its context length (8192 here),
    so calls sent side by side cannot spend many times the budget."""
    parts = [{"type": "text", "text": "What is this?"}, IMAGE]
    params = {"model": "test/cheap", "messages": [{"role": "user", "content": parts}]}
    found = quote(server, "chat", {**params, "max_tokens": 50})
    assert Decimal(str(found.usd)) == Decimal("0.000001") * 8192 + Decimal("0.000002") * 50
    assert found.facts["prompt_tokens_est"] == 8192


def test_what_a_message_carries_beyond_openais_fields_is_reserved_too(
    server: OpenRouterServer,
) -> None:
    """Fields a message carries beyond OpenAI's go upstream (an earlier answer's
    ``reasoning_details``): their bytes count; a reference to audio the model made before
    may be thousands of tokens, as an image is: the model's whole context."""
    thinking = {
        "role": "assistant",
        "content": "ok",
        "reasoning_details": [{"type": "reasoning.text", "text": "y" * 3000}],
    }
    params = {"model": "test/cheap", "messages": [thinking, *HELLO], "max_tokens": 1}
    assert quote(server, "chat", params).facts["prompt_tokens_est"] > 3000
    spoken = {"role": "assistant", "audio": {"id": "audio_abc"}}
    params = {"model": "test/cheap", "messages": [spoken, *HELLO], "max_tokens": 1}
    assert quote(server, "chat", params).facts["prompt_tokens_est"] == 8192


def test_a_prompt_with_an_image_for_a_model_of_unknown_context_is_refused(
    server: OpenRouterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    [cheap] = [m for m in MODELS if m["id"] == "test/cheap"]
    monkeypatch.delitem(cheap, "context_length")
    params = {"model": "test/cheap", "messages": [{"role": "user", "content": [IMAGE]}]}
    with pytest.raises(InvalidInput) as raised:
        quote(server, "chat", params)
    assert raised.value.field == "messages"
    assert quote(server, "chat", {"model": "test/cheap", "messages": HELLO}).usd > 0


def test_max_tokens_above_the_cap_is_refused_naming_the_field(server: OpenRouterServer) -> None:
    with pytest.raises(InvalidInput) as raised:
        quote(server, "chat", {"model": "test/cheap", "messages": HELLO, "max_tokens": 9000})
    assert raised.value.field == "max_tokens"


def test_chat_answers_in_openai_format_and_is_charged_what_openrouter_reports(
    server: OpenRouterServer,
) -> None:
    server.answer_tokens = 3

    async def body(connector: OpenRouterConnector) -> tuple[Any, Charge]:
        params = {"model": "test/cheap", "messages": HELLO, "max_tokens": 20}
        result = await connector.call("chat", params)
        parsed = connector.spec("chat").params.model_validate(params)
        return result, connector.charge("chat", parsed, result)

    result, charge = use(server, body)
    assert result.model_dump()["choices"][0]["message"]["content"] == "w w w "
    sent = server.spending_calls()[-1].body
    assert sent is not None
    assert sent["usage"] == {"include": True}
    assert sent["max_tokens"] == 20
    assert "stream" not in sent
    assert charge.usd == result.model_dump()["usage"]["cost"]
    assert charge.facts["completion_tokens"] == 3
    assert charge.facts["cost_from"] == "service"


async def flat_chat_charge(connector: OpenRouterConnector) -> Charge:
    """The charge of a 10-token chat with ``test/flat``, as the host settles it."""
    params = {"model": "test/flat", "messages": HELLO, "max_tokens": 10}
    result = await connector.call("chat", params)
    return connector.charge("chat", connector.spec("chat").params.model_validate(params), result)


def test_without_a_reported_cost_the_charge_is_tokens_times_price(
    server: OpenRouterServer,
) -> None:
    server.report_cost = False
    server.answer_tokens = 10

    charge = use(server, flat_chat_charge)
    assert Decimal(str(charge.usd)) == Decimal("0.00001") * 10
    assert charge.facts["cost_from"] == "tokens x price"


@pytest.mark.parametrize(
    "usage",
    [{}, {"cost": "0.01"}, {"cost": -1, "completion_tokens": 10}, {"prompt_tokens": "9"}],
)
def test_a_usage_that_tells_neither_cost_nor_tokens_is_no_charge(
    server: OpenRouterServer, usage: dict[str, Any]
) -> None:
    """A usage without a cost the connector can read and without the prompt's token count
    says nothing of the cost: it must not settle the call at (about) nothing; raising,
    the call is counted at its reservation."""
    server.usage = usage

    with pytest.raises(ConnectorError, match="usage"):
        use(server, flat_chat_charge)


@pytest.mark.parametrize(
    ("usage", "cost", "source"),
    [
        # The provider bills a BYOK call to the person's own account with it, and
        # OpenRouter's cost is only its fee (often 0): both are money spent.
        (
            {"is_byok": True, "cost": 0.001, "cost_details": {"upstream_inference_cost": 0.02}},
            "0.021",
            "service and provider (BYOK)",
        ),
        # ... without the provider's figure, the tokens at the listed prices stand for it.
        ({"is_byok": True, "cost": 0}, "0.00005", "service and tokens x price (BYOK)"),
        # Not BYOK: cost already includes the provider's, counted once.
        (
            {"is_byok": False, "cost": 0.02, "cost_details": {"upstream_inference_cost": 0.02}},
            "0.02",
            "service",
        ),
    ],
)
def test_a_byok_call_counts_what_the_provider_bills_too(
    server: OpenRouterServer, usage: dict[str, Any], cost: str, source: str
) -> None:
    server.usage = {"prompt_tokens": 0, "completion_tokens": 5, **usage}

    charge = use(server, flat_chat_charge)
    assert Decimal(str(charge.usd)) == Decimal(cost)
    assert charge.facts["cost_from"] == source


@pytest.mark.parametrize("missing", ["prompt", "completion"])
def test_a_model_listed_without_a_price_is_not_free(
    server: OpenRouterServer, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    [cheap] = [m for m in MODELS if m["id"] == "test/cheap"]
    monkeypatch.setitem(
        cheap, "pricing", {k: v for k, v in cheap["pricing"].items() if k != missing}
    )
    with pytest.raises(InvalidInput) as raised:
        quote(server, "chat", {"model": "test/cheap", "messages": HELLO})
    assert raised.value.field == "model"


@pytest.mark.parametrize("given", ["", [""], ["", ""]])
def test_an_empty_embedding_input_still_costs_its_framing(
    server: OpenRouterServer, given: Any
) -> None:
    """A model frames each input with tokens of its own (a start and an end): an empty
    one is not free, so it cannot pass a budget that has nothing left, again and again."""
    found = quote(server, "embed", {"model": "test/embed", "input": given})
    assert found.usd > 0
    assert found.facts["prompt_tokens_est"] == 4 * (len(given) if isinstance(given, list) else 1)


def test_embeddings_are_quoted_and_charged(server: OpenRouterServer) -> None:
    params = {"model": "test/embed", "input": ["one", "two"]}
    assert quote(server, "embed", params).usd > 0

    async def body(connector: OpenRouterConnector) -> tuple[Any, Charge]:
        result = await connector.call("embed", params)
        parsed = connector.spec("embed").params.model_validate(params)
        return result.model_dump(), connector.charge("embed", parsed, result)

    result, charge = use(server, body)
    assert [d["index"] for d in result["data"]] == [0, 1]
    assert charge.usd == result["usage"]["cost"]


def test_usage_reports_the_key_credit_and_no_budget_outside_a_session(
    server: OpenRouterServer,
) -> None:
    async def body(connector: OpenRouterConnector) -> Any:
        return (await connector.call("usage", {})).model_dump()

    usage = use(server, body)
    assert usage["budget"] is None
    assert usage["key"]["limit_remaining_usd"] == 9.75
    assert server.key not in str(usage)


def test_usage_accounting_is_always_asked_for_whatever_the_client_says(
    server: OpenRouterServer,
) -> None:
    async def body(connector: OpenRouterConnector) -> Any:
        params = {"model": "test/cheap", "messages": HELLO, "usage": {"include": False}}
        return await connector.call("chat", params)

    use(server, body)
    sent = server.spending_calls()[-1].body
    assert sent is not None
    assert sent["usage"] == {"include": True}


def test_embeddings_cannot_be_streamed(server: OpenRouterServer) -> None:
    async def body(connector: OpenRouterConnector) -> Any:
        params = connector.spec("embed").params.model_validate(
            {"model": "test/embed", "input": "x"}
        )
        return [item async for item in connector.stream("embed", params)]

    with pytest.raises(InvalidInput) as raised:
        use(server, body)
    assert raised.value.field == "stream"


def test_chat_with_stream_true_is_only_for_the_openai_endpoint(server: OpenRouterServer) -> None:
    async def body(connector: OpenRouterConnector) -> Any:
        return await connector.call(
            "chat", {"model": "test/cheap", "messages": HELLO, "stream": True}
        )

    with pytest.raises(InvalidInput) as raised:
        use(server, body)
    assert raised.value.field == "stream"
    assert server.spending_calls() == []


def test_a_stream_yields_chunks_meter_readings_and_then_its_charge(
    server: OpenRouterServer,
) -> None:
    server.answer_tokens = 4

    async def body(connector: OpenRouterConnector) -> list[Any]:
        params = connector.spec("chat").params.model_validate(
            {"model": "test/cheap", "messages": HELLO, "max_tokens": 10, "stream": True}
        )
        return [item async for item in connector.stream("chat", params)]

    items = use(server, body)
    chunks = [i for i in items if isinstance(i, dict)]
    meters = [i for i in items if isinstance(i, Meter)]
    charges = [i for i in items if isinstance(i, Charge)]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == "w w w w "
    assert [m.usd for m in meters] == [float(Decimal("0.000002") * n) for n in range(1, 5)]
    assert len(charges) == 1
    assert charges[0].facts["completion_tokens"] == 4
    assert isinstance(items[-1], Charge)
    assert server.spending_calls()[-1].body["stream"] is True  # type: ignore[index]


def test_reasoning_tokens_move_the_meter_like_answer_tokens(server: OpenRouterServer) -> None:
    """A thinking model streams its reasoning before its answer, billed as answer tokens:
    a stream of reasoning only must still reach its reservation and be cut there."""
    server.answer_tokens = 3
    server.thinking = True

    async def body(connector: OpenRouterConnector) -> list[Any]:
        params = connector.spec("chat").params.model_validate(
            {"model": "test/cheap", "messages": HELLO, "max_tokens": 10, "stream": True}
        )
        return [item async for item in connector.stream("chat", params)]

    meters = [i.usd for i in use(server, body) if isinstance(i, Meter)]
    assert meters == [float(Decimal("0.000002") * n) for n in range(1, 4)]


def test_a_stream_whose_usage_tells_nothing_ends_whole_without_a_charge(
    server: OpenRouterServer,
) -> None:
    """Its answer is relayed to the end; with no charge, core counts the reservation."""
    server.answer_tokens = 2
    server.usage = {"cost": "0.01"}

    async def body(connector: OpenRouterConnector) -> list[Any]:
        params = connector.spec("chat").params.model_validate(
            {"model": "test/cheap", "messages": HELLO, "max_tokens": 10, "stream": True}
        )
        return [item async for item in connector.stream("chat", params)]

    items = use(server, body)
    assert [i for i in items if isinstance(i, Charge)] == []
    assert items[-1] == {**items[-1], "usage": {"cost": "0.01"}}  # the last chunk, relayed


def test_a_provider_failing_mid_way_is_an_answer_lost(server: OpenRouterServer) -> None:
    """OpenRouter took the call (200) and its provider failed while answering: the tokens
    generated so far may be billed, so the call is counted at its reservation."""
    server.answer = {"error": {"code": 502, "message": "provider went away"}}

    async def body(connector: OpenRouterConnector) -> Any:
        return await connector.call("chat", {"model": "test/cheap", "messages": HELLO})

    with pytest.raises(ServiceAnswerLost, match="provider went away"):
        use(server, body)


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (401, ConnectorAuthError, "service_auth_failed"),
        (402, ServiceOutOfCredit, "service_out_of_credit"),
        (403, ServiceRefused, "service_refused"),  # moderation flagged the input
        (429, ServiceRateLimited, "service_rate_limited"),
        (500, ServiceRefused, "service_refused"),
        (503, ServiceRefused, "service_refused"),
    ],
)
def test_upstream_errors_are_mapped(
    server: OpenRouterServer, status: int, error: type[AirlockError], code: str
) -> None:
    server.fail("/chat/completions", status, retry_after=7 if status == 429 else None)

    async def body(connector: OpenRouterConnector) -> Any:
        return await connector.call("chat", {"model": "test/cheap", "messages": HELLO})

    with pytest.raises(error) as raised:
        use(server, body)
    assert raised.value.code == code
    assert server.key not in str(raised.value.to_dict())
    if status == 429:
        assert isinstance(raised.value, ServiceRateLimited)
        assert raised.value.retry_after == 7
        assert raised.value.status == 429
    if status >= 500:
        assert raised.value.status == 502
    if status == 403:  # the agent's text was refused, not the person's key
        assert not isinstance(raised.value, ConnectorAuthError)
        assert "refused the input (HTTP 403): Input was flagged by moderation" in str(
            raised.value.message
        )


def test_a_key_at_its_spending_limit_is_out_of_credit_not_flagged_input(
    server: OpenRouterServer,
) -> None:
    """OpenRouter answers 403 "Key limit exceeded" once the key reaches the spending limit
    the person set on it: theirs to raise, not the agent's input to change."""
    limit = "Key limit exceeded (total limit). Manage it using https://openrouter.ai/settings/keys"
    server.faults.setdefault("/chat/completions", []).append(Fault(403, limit))

    async def body(connector: OpenRouterConnector) -> Any:
        return await connector.call("chat", {"model": "test/cheap", "messages": HELLO})

    with pytest.raises(ServiceOutOfCredit) as raised:
        use(server, body)
    assert "spending limit set on it" in raised.value.message
    assert "input" not in raised.value.message


def test_a_wrong_key_is_refused_without_quoting_it(server: OpenRouterServer) -> None:
    wrong = "sk-or-v1-WRONGKEY" + "0" * 40

    async def body(connector: OpenRouterConnector) -> Any:
        return await connector.call("list_models", {})

    with pytest.raises(ConnectorAuthError) as raised:
        use(server, body, key=wrong)
    text = str(raised.value.to_dict())
    assert wrong not in text
    assert "the person has been told" in text


def test_an_unreachable_service_is_a_502_naming_no_key(server: OpenRouterServer) -> None:
    async def body(connector: OpenRouterConnector) -> Any:
        return await connector.call("list_models", {})

    connector_kw = {"api_base": "http://127.0.0.1:9/api/v1"}
    with pytest.raises(ConnectorError) as raised:
        use(server, body, **connector_kw)
    assert raised.value.status == 502
    assert "unreachable" in raised.value.message


@pytest.mark.parametrize("key", ["max_usd_typo", "api_key"])
def test_unknown_settings_are_refused_naming_the_key(key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        OpenRouterConnector.parse_settings({key: 1}, service="llm")
    assert raised.value.field == f"services.llm.{key}"


def test_missing_credentials_name_the_field_only() -> None:
    with pytest.raises(InvalidInput) as raised:
        OpenRouterConnector.parse_credentials({"api_kye": "sk-or-secret"}, service="llm")
    assert "sk-or-secret" not in str(raised.value.to_dict())
    assert raised.value.field is not None


def test_a_closed_connector_sends_nothing_more_with_its_key(server: OpenRouterServer) -> None:
    """The connector host closes a connector under a running call when the vault is locked
    or no session covers its service: what that call asks next must not reach the service
    (a new HTTP client made with the key, and never closed)."""

    async def main() -> ConnectorError:
        connector = connector_for(server)
        await connector.open()
        await connector.call("list_models", {})
        await connector.close()
        server.calls.clear()
        try:
            with pytest.raises(ConnectorError) as raised:
                await connector.check()  # asks for the key's usage: always a request
        finally:
            await connector.close()
        return raised.value

    assert "closed" in run(main()).message
    assert server.calls == []
