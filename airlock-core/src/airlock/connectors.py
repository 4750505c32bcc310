"""The connector contract: what a service plugin implements (DESIGN §2, §9).

A connector class declares its operations with :func:`operation`::

    class Maildir(Connector):
        name = "maildir"
        title = "Local Maildir"
        Settings = MaildirSettings

        @operation(access=Access.READ, params=ListParams, result=MessageList,
                   description="List messages in a folder, newest first.")
        async def list_messages(self, params: ListParams) -> MessageList: ...

Core calls operations only through :meth:`Connector.call`, which validates the parameters
against the params model and the return value against the result model.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, cast

from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypeVar

from airlock.errors import ConnectorError, InvalidInput, NotFound
from airlock.models import Access, NoCredentials, NoSettings, first_problem

__all__ = [
    "OPERATION_NAME",
    "Access",
    "CheckResult",
    "Connector",
    "Done",
    "NoCredentials",
    "NoSettings",
    "OperationSpec",
    "Params",
    "ToolAlias",
    "operation",
    "validate_settings",
]

OPERATION_NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
OPENAI_PATHS = {"chat/completions": "POST", "embeddings": "POST", "models": "GET"}
"""The OpenAI API paths (and their methods) a connector may serve; see ``openai_operations``."""


class Params(BaseModel):
    """Base for params models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Done(BaseModel):
    """The result of a write operation that returns nothing else."""

    ok: bool = True
    detail: str = ""


class CheckResult(BaseModel):
    """What ``check()`` found, in words a person reads: "connected: 1,234 messages, 12 unread"."""

    ok: bool
    summary: str


P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
# A connector's settings model: ``class Weather(Connector[WeatherSettings])`` makes
# ``self.settings.city`` typed for mypy; a bare ``Connector`` means any settings.
S = TypeVar("S", bound=BaseModel, covariant=True, default=BaseModel)
Method = Callable[[Any, P], Awaitable[R]]


@dataclass(frozen=True)
class OperationSpec:
    name: str
    access: Access
    params: type[BaseModel]
    result: type[BaseModel]
    description: str
    method: str
    destructive: bool = False

    def params_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def result_schema(self) -> dict[str, Any]:
        """What a result looks like as the daemon sends it (aliases, JSON types)."""
        return self.result.model_json_schema(by_alias=True, mode="serialization")


@dataclass(frozen=True)
class ToolAlias:
    """An MCP tool name that agents configured for earlier releases used, mapped to an
    operation: ``ToolAlias("airlock_get_email", "get_message", "Read one message.",
    {"message_id": "id"})``. The tool takes the operation's parameters named in *args*
    (tool argument -> parameter; all of them when empty), plus ``service`` when more
    than one service offers the operation."""

    tool: str
    operation: str
    description: str
    args: Mapping[str, str] = field(default_factory=dict)


_SPEC_ATTR = "__airlock_operation__"


def operation(
    *,
    access: Access,
    params: type[P],
    result: type[R],
    description: str,
    name: str | None = None,
    destructive: bool = False,
) -> Callable[[Method[P, R]], Method[P, R]]:
    """Declare an async method of a :class:`Connector` as an operation agents may call.

    *destructive*: the write cannot be undone by another operation (delete, send, pay);
    MCP clients show it as such.
    """

    def mark(func: Method[P, R]) -> Method[P, R]:
        op_name = name or func.__name__
        if not OPERATION_NAME.match(op_name):
            raise ValueError(f"operation name {op_name!r} must be snake_case")
        if not description.strip():
            raise ValueError(f"operation {op_name!r} needs a one-line description")
        spec = OperationSpec(
            op_name, access, params, result, description, func.__name__, destructive
        )
        setattr(func, _SPEC_ATTR, spec)
        return func

    return mark


class Connector(Generic[S]):
    """Base class of every connector. Subclasses set ``name``, ``title`` and operations,
    and ``Settings`` to the model they name as type argument (``Connector[MySettings]``).

    One instance serves one configured service. ``open()`` connects, ``close()`` releases
    (it must be safe to call twice), ``check()`` is a read-only probe used by
    ``airlock credentials add``. Read-only must also be enforced at the protocol level
    where the service allows it.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Credentials: ClassVar[type[BaseModel]] = NoCredentials
    operations: ClassVar[Mapping[str, OperationSpec]] = {}
    open_world: ClassVar[bool] = True
    """Whether the service is out in the world (a mail server, an API) rather than local
    files; MCP clients show it."""
    tool_aliases: ClassVar[tuple[ToolAlias, ...]] = ()
    """MCP tool names from earlier releases that map to this connector's operations."""
    openai_operations: ClassVar[Mapping[str, str]] = {}
    """Which operations speak OpenAI's wire format, by OpenAI path: e.g.
    ``{"chat/completions": "chat", "embeddings": "embed", "models": "list_models"}``.
    The daemon serves them at ``/v1/openai/{service}/{path}`` for OpenAI clients; their
    params models take OpenAI's request bodies and their results are OpenAI's responses."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, OperationSpec] = dict(getattr(cls, "operations", {}))
        for attr in vars(cls).values():
            spec = getattr(attr, _SPEC_ATTR, None)
            if isinstance(spec, OperationSpec):
                found[spec.name] = spec
        cls.operations = found

    def __init__(self, settings: BaseModel, credentials: BaseModel, *, service: str) -> None:
        # Core builds *settings* with this class's own Settings model (parse_settings).
        self.settings: S = cast(S, settings)
        self.credentials = credentials
        self.service = service

    def __repr__(self) -> str:
        return f"<{type(self).__name__} service={self.service!r}>"

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any], *, service: str) -> BaseModel:
        return validate_settings(cls.Settings, raw, where=f"services.{service}")

    @classmethod
    def parse_credentials(cls, raw: Mapping[str, Any], *, service: str) -> BaseModel:
        try:
            return cls.Credentials.model_validate(dict(raw))
        except ValidationError as exc:
            # Never echo the input or a validator's message about it: it is a secret.
            field = first_problem(exc).field
            raise InvalidInput(
                f"service {service!r}: credentials incomplete or invalid (field {field})",
                field=field,
                hint=f"run `airlock credentials add {service}`",
            ) from None

    async def open(self) -> None:
        """Connect and authenticate. Called before the first operation of a session."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def check(self) -> CheckResult:
        """A read-only probe: can we connect, and what is there?"""
        return CheckResult(ok=True, summary="no check implemented")

    @classmethod
    def spec(cls, operation_name: str) -> OperationSpec:
        try:
            return cls.operations[operation_name]
        except KeyError:
            raise NotFound(
                f"{cls.name} has no operation {operation_name!r}",
                hint="GET /v1/services lists the operations",
            ) from None

    async def call(self, operation_name: str, params: Mapping[str, Any] | None) -> BaseModel:
        """Validate *params*, run the operation and validate what it returns."""
        spec = self.spec(operation_name)
        try:
            parsed = spec.params.model_validate(dict(params or {}))
        except ValidationError as exc:
            problem = first_problem(exc)
            raise InvalidInput(str(problem), field=problem.field) from None
        method: Callable[[BaseModel], Awaitable[BaseModel]] = getattr(self, spec.method)
        result = await method(parsed)
        if not isinstance(result, spec.result):
            raise ConnectorError(
                f"{self.name}.{spec.name} returned {type(result).__name__}, "
                f"expected {spec.result.__name__}"
            )
        return result


def validate_settings(model: type[BaseModel], raw: Mapping[str, Any], *, where: str) -> BaseModel:
    """*raw* as *model*; a key the model does not know is refused by name, even when the
    plugin's model forgot ``extra="forbid"`` (a typo must not silently fall back to a
    default). Only a model that says ``extra="allow"`` takes free-form keys. *where* is the
    section's key in config.yaml (``services.mail``); errors name the full key."""
    if model.model_config.get("extra") != "allow":
        known = set(model.model_fields)
        known |= {f.alias for f in model.model_fields.values() if f.alias}
        for key in raw:
            if key not in known:
                raise InvalidInput(
                    f"{where}: unknown setting {key!r}",
                    field=f"{where}.{key}",
                    hint=f"its settings are: {', '.join(model.model_fields) or 'none'}",
                )
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        problem = first_problem(exc, within=where)
        raise InvalidInput(str(problem), field=problem.field) from None
