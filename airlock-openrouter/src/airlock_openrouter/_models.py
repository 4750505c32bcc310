"""Parameters and results of the ``openrouter`` operations, in OpenAI's wire format.

The params models take OpenAI's request bodies (what the official SDK sends), so the same
models serve ``POST /v1/ops/llm/chat`` and ``POST /v1/openai/llm/chat/completions``. Fields
that would change where the money goes (``models`` fallbacks, ``provider`` routing, usage
accounting) are not accepted: Airlock sets them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from airlock.plugin import Params, SpendSettings

MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+~-]{0,159}$"
DEFAULT_API_BASE = "https://openrouter.ai/api/v1"


class OpenRouterSettings(SpendSettings):
    api_base: str = Field(
        DEFAULT_API_BASE,
        pattern=r"^https?://[^\s]+$",
        description="OpenRouter's API (a local stand-in in tests).",
    )
    models: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Models the agent may use, as glob patterns ("openai/gpt-4o*").',
    )
    max_tokens: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="Most tokens one answer may have; also the default when a call names none.",
    )
    timeout: float = Field(120.0, gt=0, le=3600, description="Seconds to wait for an answer.")


class OpenRouterCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    api_key: SecretStr = Field(min_length=1, description="Your OpenRouter API key (sk-or-...)")


class Message(BaseModel):
    """One chat message; fields beyond these (``refusal``, ``audio``) are passed on."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, max_length=128)
    tool_calls: list[dict[str, Any]] | None = None


class ChatParams(Params):
    model: str = Field(pattern=MODEL_PATTERN, description="Model id, e.g. openai/gpt-4o-mini")
    messages: list[Message] = Field(min_length=1, max_length=2000)
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
    stream: bool = Field(False, description="Only on the OpenAI-compatible endpoint")
    stream_options: dict[str, Any] | None = None
    usage: dict[str, Any] | None = Field(
        None, description="Accepted for OpenRouter clients; Airlock always asks for usage"
    )


class ChatResult(BaseModel):
    """OpenAI's ``chat.completion`` object, as OpenRouter sends it (usage includes cost)."""

    model_config = ConfigDict(extra="allow")

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, Any] | None = None


class EmbedParams(Params):
    model: str = Field(pattern=MODEL_PATTERN, description="Embedding model id")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="Text (or texts) to embed"
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1, le=100_000)
    user: str | None = Field(None, max_length=256)


class EmbedResult(BaseModel):
    """OpenAI's embeddings ``list`` object."""

    model_config = ConfigDict(extra="allow")

    object: str = "list"
    data: list[dict[str, Any]] = Field(default_factory=list)
    model: str = ""
    usage: dict[str, Any] | None = None


class NoParams(Params):
    pass


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = ""
    name: str = ""
    context_length: int | None = None
    pricing: dict[str, Any] = Field(default_factory=dict)


class ModelList(BaseModel):
    """OpenAI's model ``list`` object: the allowed models, with OpenRouter's prices."""

    object: str = "list"
    data: list[ModelInfo] = Field(default_factory=list)


class Budget(BaseModel):
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    left_usd: float


class KeyInfo(BaseModel):
    label: str = ""
    usage_usd: float | None = None
    limit_usd: float | None = None
    limit_remaining_usd: float | None = None
    is_free_tier: bool | None = None


class UsageResult(BaseModel):
    budget: Budget | None = Field(None, description="This session's budget (spend sessions)")
    key: KeyInfo = Field(description="The OpenRouter key's own spending and limit")
