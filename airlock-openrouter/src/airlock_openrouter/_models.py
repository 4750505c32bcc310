"""Parameters and results of the ``openrouter`` operations, in OpenAI's wire format.

The params models take OpenAI's request bodies (what the official SDK sends), so the same
models serve ``POST /v1/ops/llm/chat`` and ``POST /v1/openai/llm/chat/completions``. Fields
that would change where the money goes (``models`` fallbacks, ``provider`` routing, usage
accounting) are not accepted: Airlock sets them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from airlock.plugin import OpenAIChatFields, OpenAIEmbeddingsFields, Params, SpendSettings

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

    @field_validator("api_key", mode="before")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        """The key as it goes in a header: blanks around it dropped (a server trims them,
        so an echo would hold the key without them, which the search for the key as
        stored would miss), and visible ASCII only (a server reading headers as Latin-1
        would echo other characters changed)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        key = raw.strip()
        if not all("!" <= c <= "~" for c in key):
            raise ValueError("an API key is letters, digits and punctuation, without spaces")
        return key


class ChatParams(OpenAIChatFields, Params):
    """OpenAI's chat request (unknown fields refused), and OpenRouter's ``usage`` switch."""

    stream: bool = Field(False, description="Only on the OpenAI-compatible endpoint")
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


class EmbedParams(OpenAIEmbeddingsFields, Params):
    """OpenAI's embeddings request (unknown fields refused)."""


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
