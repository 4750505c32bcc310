"""The ``openrouter`` connector: OpenRouter's chat and embeddings within a budget.

``list_models`` and ``usage`` read; ``chat`` and ``embed`` spend. Before a spend call core
asks :meth:`OpenRouterConnector.quote` for its worst case — the prompt's estimated tokens
(the model's whole context with an image, audio or a file in it) at the model's prompt
price plus ``max_tokens`` at its answer price, from ``/models`` — and reserves it;
afterwards :meth:`OpenRouterConnector.charge` gives the real cost, OpenRouter's
``usage.cost`` (asked for with ``usage: {include: true}``) or, when absent, the tokens it
counted at the listed prices. Models outside the ``models`` allow-list are refused before
anything is sent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from airlock.plugin import (
    Access,
    Charge,
    CheckResult,
    ConnectorError,
    Forbidden,
    InvalidInput,
    Meter,
    PricedConnector,
    Quote,
    ServiceAnswerLost,
    ServiceRefused,
    StreamItem,
    current_budget,
    operation,
)
from airlock_openrouter._models import (
    Budget,
    ChatParams,
    ChatResult,
    EmbedParams,
    EmbedResult,
    KeyInfo,
    ModelInfo,
    ModelList,
    NoParams,
    OpenRouterCredentials,
    OpenRouterSettings,
    UsageResult,
)
from airlock_openrouter._pricing import (
    Price,
    allowed,
    asks_for_caching,
    chat_prompt_tokens,
    estimate_tokens,
    has_media,
    prompt_size,
)

if TYPE_CHECKING:
    # aiohttp loads with the first call, not when the connector is declared
    from airlock_openrouter._api import OpenRouterApi

__all__ = ["OpenRouterConnector"]

CATALOGUE_TTL = 600.0
"""Seconds the model list (and so the prices) is reused before it is fetched again."""
CHAT, EMBED = "chat", "embed"


class OpenRouterConnector(PricedConnector):
    name = "openrouter"
    title = "OpenRouter (LLM chat and embeddings)"
    Settings = OpenRouterSettings
    Credentials = OpenRouterCredentials
    openai_operations: ClassVar[Mapping[str, str]] = {
        "chat/completions": CHAT,
        "embeddings": EMBED,
        "models": "list_models",
    }

    def __init__(self, settings: BaseModel, credentials: BaseModel, *, service: str) -> None:
        super().__init__(settings, credentials, service=service)
        assert isinstance(settings, OpenRouterSettings)
        assert isinstance(credentials, OpenRouterCredentials)
        self.config = settings
        self._key = credentials.api_key
        self._api: OpenRouterApi | None = None
        self._closed = False
        self._catalogue: dict[str, ModelInfo] = {}
        self._fetched_at = -CATALOGUE_TTL

    # -- lifecycle ------------------------------------------------------------------

    @property
    def api(self) -> OpenRouterApi:
        if self._closed:
            # Closed under a running call (the vault locked, no session covering the
            # service): nothing more goes out with the key, and no client is left open.
            raise ServiceRefused(f"service {self.service!r}: its connector was closed")
        if self._api is None:
            from airlock_openrouter._api import OpenRouterApi

            self._api = OpenRouterApi(
                self.config.api_base,
                self._key.get_secret_value(),
                service=self.service,
                timeout=self.config.timeout,
            )
        return self._api

    async def open(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        api, self._api = self._api, None
        if api is not None:
            await api.aclose()

    async def check(self) -> CheckResult:
        key = await self._key_info()
        models = await self._models()
        spent = f"${key.usage_usd:.2f} used" if key.usage_usd is not None else "usage unknown"
        limit = f" of ${key.limit_usd:.2f}" if key.limit_usd is not None else ""
        return CheckResult(
            ok=True, summary=f"connected: {spent}{limit}, {len(models)} models allowed"
        )

    # -- reads ----------------------------------------------------------------------

    @operation(
        access=Access.READ,
        params=NoParams,
        result=ModelList,
        description="The models you may use, with OpenRouter's prices in dollars per token.",
    )
    async def list_models(self, params: NoParams) -> ModelList:
        return ModelList(data=sorted((await self._models()).values(), key=lambda m: m.id))

    @operation(
        access=Access.READ,
        params=NoParams,
        result=UsageResult,
        description="Budget left in this session, and the OpenRouter key's own usage and limit.",
    )
    async def usage(self, params: NoParams) -> UsageResult:
        state = current_budget()
        budget = Budget(**state.as_usd()) if state is not None else None
        return UsageResult(budget=budget, key=await self._key_info())

    # -- spending -------------------------------------------------------------------

    @operation(
        access=Access.SPEND,
        params=ChatParams,
        result=ChatResult,
        description="Chat completion (OpenAI format); costs money within the session's budget.",
    )
    async def chat(self, params: ChatParams) -> ChatResult:
        if params.stream:
            raise InvalidInput(
                "stream: answers are streamed only on the OpenAI-compatible endpoint",
                field="stream",
                hint=f"POST /v1/openai/{self.service}/chat/completions",
            )
        await self._price(params.model)  # the allow-list holds even without a quote
        answer = await self.api.post("chat/completions", self._chat_body(params))
        return ChatResult.model_validate(_no_error(answer))

    @operation(
        access=Access.SPEND,
        params=EmbedParams,
        result=EmbedResult,
        description="Embeddings of text (OpenAI format); costs money within the budget.",
    )
    async def embed(self, params: EmbedParams) -> EmbedResult:
        await self._price(params.model)
        body = params.model_dump(exclude_none=True) | {"usage": {"include": True}}
        answer = await self.api.post("embeddings", body)
        return EmbedResult.model_validate(_no_error(answer))

    async def quote(self, operation: str, params: BaseModel) -> Quote:
        if isinstance(params, ChatParams):
            price = await self._price(params.model)
            limit = self._max_tokens(params)
            prompt = chat_prompt_tokens(params)
            if has_media(params):
                prompt = max(prompt, self._context_length(params.model))
            elif (context := self._listed_context_length(params.model)) is not None:
                prompt = min(prompt, context)  # the most the service reads and bills
            answers = limit * (params.n or 1)
            worst = price.worst(prompt, answers, cached=asks_for_caching(params))
            facts = {"model": params.model, "max_tokens": limit, "prompt_tokens_est": prompt}
        elif isinstance(params, EmbedParams):
            price = await self._price(params.model)
            inputs = len(params.input) if isinstance(params.input, list) else 1
            prompt = estimate_tokens(prompt_size(params.input), inputs)  # each framed
            worst = price.cost(prompt, 0)
            facts = {"model": params.model, "prompt_tokens_est": prompt}
        else:
            raise ConnectorError(f"{self.name} has no price for {operation!r}")
        return Quote(usd=float(worst), facts=facts)

    def charge(self, operation: str, params: BaseModel, result: BaseModel) -> Charge:
        usage = getattr(result, "usage", None)
        model = str(getattr(result, "model", "") or getattr(params, "model", ""))
        return self._charge_of(str(getattr(params, "model", "")), model, usage)

    async def stream(self, operation: str, params: BaseModel) -> AsyncIterator[StreamItem]:
        if operation != CHAT or not isinstance(params, ChatParams):
            raise InvalidInput(f"stream: {operation} cannot be streamed", field="stream")
        price = await self._price(params.model)
        body = self._chat_body(params) | {"stream": True}
        answered = 0
        async for chunk in self.api.stream("chat/completions", body):
            yield chunk
            if _has_content(chunk):
                answered += 1  # every content chunk carries at least one token
                yield Meter(usd=float(price.completion * answered))
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                try:
                    yield self._charge_of(params.model, str(chunk.get("model") or ""), usage)
                except ConnectorError:
                    continue  # no charge: the call is counted at its reservation

    # -- helpers --------------------------------------------------------------------

    def _chat_body(self, params: ChatParams) -> dict[str, Any]:
        body = params.model_dump(
            exclude_none=True,
            exclude={"stream", "stream_options", "max_completion_tokens", "usage"},
        )
        body["messages"] = [m.model_dump(exclude_none=True) for m in params.messages]
        body["max_tokens"] = self._max_tokens(params)
        body["usage"] = {"include": True}
        return body

    def _max_tokens(self, params: ChatParams) -> int:
        asked = [v for v in (params.max_tokens, params.max_completion_tokens) if v is not None]
        limit = min(asked) if asked else self.config.max_tokens
        if limit > self.config.max_tokens:
            raise InvalidInput(
                f"max_tokens: at most {self.config.max_tokens} on service {self.service!r}",
                field="max_tokens",
            )
        return limit

    async def _models(self) -> dict[str, ModelInfo]:
        """The allowed models by id, from ``/models`` (fetched again after a while)."""
        now = time.monotonic()
        if now - self._fetched_at >= CATALOGUE_TTL:
            listed = await self.api.get("models")
            data = listed.get("data")
            if not isinstance(data, list):
                raise ConnectorError("OpenRouter's model list has no data")
            catalogue = {}
            for entry in data:
                try:
                    info = ModelInfo.model_validate(entry)
                except ValueError:
                    continue
                if allowed(info.id, self.config.models):
                    catalogue[info.id] = info
            self._catalogue, self._fetched_at = catalogue, now
        return self._catalogue

    async def _price(self, model: str) -> Price:
        if not allowed(model, self.config.models):
            raise Forbidden(
                f"model {model!r} is not allowed on service {self.service!r}",
                hint=f"allowed: {', '.join(self.config.models)} (the `models` setting)",
            )
        info = (await self._models()).get(model)
        if info is None:
            raise InvalidInput(
                f"model: OpenRouter has no model {model!r}",
                field="model",
                hint=f"list_models on {self.service!r} lists them",
            )
        price = Price.of(info.pricing)
        if price is None:
            raise InvalidInput(f"model: {model!r} has no fixed price", field="model")
        return price

    def _listed_context_length(self, model: str) -> int | None:
        """The most tokens *model* reads (from ``/models``, already fetched by ``_price``);
        None when it lists none."""
        info = self._catalogue.get(model)
        length = info.context_length if info is not None else None
        return length if length and length > 0 else None

    def _context_length(self, model: str) -> int:
        """:meth:`_listed_context_length`, required: the worst case of a prompt whose size
        its bytes do not tell (images, audio)."""
        length = self._listed_context_length(model)
        if length is None:
            raise InvalidInput(
                f"messages: model {model!r} has no known context length, so a prompt with "
                "images, audio or files cannot be priced",
                field="messages",
                hint="send text only, or use a model that lists its context length",
            )
        return length

    def _charge_of(self, asked: str, answered: str, usage: Any) -> Charge:
        if not isinstance(usage, dict):
            raise ConnectorError("OpenRouter reported no usage for the call")
        reported = _dollars(usage.get("cost"))
        if reported is None:
            cost, source = self._listed_cost(asked, usage), "tokens x price"
        elif usage.get("is_byok") is not True:
            cost, source = reported, "service"
        else:
            # The person's own provider key (BYOK): OpenRouter's cost is its fee, and the
            # provider bills the answer to that account. Both are the person's money.
            details = usage.get("cost_details")
            found = details.get("upstream_inference_cost") if isinstance(details, dict) else None
            upstream = _dollars(found)
            if upstream is not None:
                cost, source = reported + upstream, "service and provider (BYOK)"
            else:
                cost = reported + self._listed_cost(asked, usage)
                source = "service and tokens x price (BYOK)"
        facts = {
            "model": answered or asked,
            "prompt_tokens": _count(usage.get("prompt_tokens")),
            "completion_tokens": _count(usage.get("completion_tokens")),
            "cost_from": source,
        }
        return Charge(usd=float(cost), facts=facts)

    def _listed_cost(self, model: str, usage: dict[str, Any]) -> Decimal:
        """The tokens *usage* counts at *model*'s listed prices."""
        if not _counted(usage):  # counted as 0, the call would settle at about nothing
            raise ConnectorError("OpenRouter's usage gave neither a cost nor token counts")
        info = self._catalogue.get(model)
        price = Price.of(info.pricing) if info is not None else None
        if price is None:
            raise ConnectorError("OpenRouter reported no cost and the price is unknown")
        prompt = _count(usage.get("prompt_tokens"))
        return price.cost(prompt, _count(usage.get("completion_tokens")))

    async def _key_info(self) -> KeyInfo:
        data = (await self.api.get("key")).get("data")
        if not isinstance(data, dict):
            raise ConnectorError("OpenRouter's key endpoint sent no data")
        return KeyInfo(
            label=str(data.get("label") or "")[:80],
            usage_usd=_float(data.get("usage")),
            limit_usd=_float(data.get("limit")),
            limit_remaining_usd=_float(data.get("limit_remaining")),
            is_free_tier=free if isinstance(free := data.get("is_free_tier"), bool) else None,
        )


def _no_error(answer: dict[str, Any]) -> dict[str, Any]:
    """OpenRouter can answer 200 with an error object (the provider failed mid-way: what it
    generated so far may be billed, so the answer counts as lost, not refused)."""
    error = answer.get("error")
    if isinstance(error, dict) and not answer.get("choices") and not answer.get("data"):
        message = str(error.get("message"))[:200]
        raise ServiceAnswerLost(f"OpenRouter's provider failed: {message}")
    return answer


_BILLED = ("content", "tool_calls", "reasoning", "reasoning_details")
"""What of a chunk's delta is answer tokens (a thinking model's reasoning included)."""


def _has_content(chunk: dict[str, Any]) -> bool:
    deltas = [c.get("delta") for c in chunk.get("choices") or () if isinstance(c, dict)]
    return any(isinstance(d, dict) and any(d.get(part) for part in _BILLED) for d in deltas)


def _counted(usage: dict[str, Any]) -> bool:
    """Whether *usage* counts the prompt's tokens, and the answer's if it names them."""
    answer = usage.get("completion_tokens", 0)
    return all(_count(v) == v for v in (usage.get("prompt_tokens"), answer))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _dollars(value: Any) -> Decimal | None:
    number = _float(value)
    return Decimal(str(number)) if number is not None and number >= 0 else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
