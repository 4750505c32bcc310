"""The OpenAI-compatible endpoint's bodies and answers (``/v1/openai/{service}/...``) as
pydantic models, for ``GET /v1/openapi.json``.

OpenAI's own wire format. The service's connector validates a body (an unknown field is a
400 naming it) and its answer is passed on as the service sent it, so these models allow
fields beyond the ones OpenAI's API reference lists.

The request fields are defined once, here: a connector that serves this endpoint builds its
params from :class:`OpenAIChatFields` and :class:`OpenAIEmbeddingsFields` (exported by
``airlock.plugin``) with ``Params`` for unknown fields refused, adding only what its
service takes beyond OpenAI's format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+~-]{0,159}$"
"""A model id (``openai/gpt-4o-mini``, ``ft:gpt-4o:org::id``): no spaces, no control text."""


class _OpenAIObject(BaseModel):
    model_config = ConfigDict(extra="allow")


class OpenAIChatMessage(_OpenAIObject):
    """One chat message; fields beyond these (``refusal``, ``audio``) are passed on."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, max_length=128)
    tool_calls: list[dict[str, Any]] | None = None


class OpenAIChatFields(BaseModel):
    """The fields of OpenAI's chat completion request, with the limits Airlock checks."""

    model: str = Field(pattern=MODEL_PATTERN, description="Model id, e.g. openai/gpt-4o-mini")
    messages: list[OpenAIChatMessage] = Field(min_length=1, max_length=2000)
    max_tokens: int | None = Field(None, ge=1, description="Most tokens in the answer")
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=8)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = Field(None, max_length=256)
    stream: bool = Field(
        False,
        description="true: the answer is server-sent events, one chat.completion.chunk "
        "each, as they arrive, then `data: [DONE]` (or an `error` event if cut short)",
    )
    stream_options: dict[str, Any] | None = None


class OpenAIChatRequest(OpenAIChatFields, _OpenAIObject):
    """``POST /v1/openai/{service}/chat/completions``: OpenAI's chat completion request."""


class OpenAIUsage(_OpenAIObject):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = Field(None, description="US dollars, where the service reports it")


class OpenAIChatChoice(_OpenAIObject):
    index: int = 0
    message: OpenAIChatMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class OpenAIChatCompletion(_OpenAIObject):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[OpenAIChatChoice]
    usage: OpenAIUsage | None = None


class OpenAIChunkDelta(_OpenAIObject):
    role: str | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class OpenAIChunkChoice(_OpenAIObject):
    index: int = 0
    delta: OpenAIChunkDelta
    finish_reason: str | None = None


class OpenAIChatChunk(_OpenAIObject):
    """One server-sent event of a streamed chat completion (``data: {...}``); the last
    one carries ``usage`` (Airlock always asks for it)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[OpenAIChunkChoice]
    usage: OpenAIUsage | None = None


class OpenAIEmbeddingsFields(BaseModel):
    """The fields of OpenAI's embeddings request, with the limits Airlock checks."""

    model: str = Field(pattern=MODEL_PATTERN, description="Embedding model id")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text (or texts, or token arrays) to embed"
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1, le=100_000)
    user: str | None = Field(None, max_length=256)


class OpenAIEmbeddingsRequest(OpenAIEmbeddingsFields, _OpenAIObject):
    """``POST /v1/openai/{service}/embeddings``: OpenAI's embeddings request."""


class OpenAIEmbedding(_OpenAIObject):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of float32s")


class OpenAIEmbeddings(_OpenAIObject):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage | None = None


class OpenAIModel(_OpenAIObject):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = ""


class OpenAIModelList(_OpenAIObject):
    """``GET /v1/openai/{service}/models``: the models the service allows."""

    object: Literal["list"] = "list"
    data: list[OpenAIModel]
