"""The connector contract: what a service plugin implements (see docs/plugins.md).

A connector class declares its operations with :func:`operation`::

    class Maildir(Connector):
        name = "maildir"
        title = "Local Maildir"
        Settings = MaildirSettings

        @operation(access=Access.READ, params=ListParams, result=MessageList,
                   description="List messages in a folder, newest first.")
        async def list_messages(self, params: ListParams) -> MessageList: ...

A connector in front of a service whose operations are only known once connected (an
MCP server's tools) sets ``lists_operations = True`` and returns them from
:meth:`Connector.list_operations`, each made with :func:`listed_operation` (a JSON Schema
for its params); core asks for them after ``open()`` and serves them like declared ones.

Core calls operations only through :meth:`Connector.call`, which validates the parameters
against the params model (or JSON Schema) and the return value against the result model.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, cast

from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypeVar

from airlock.errors import ConnectorError, InvalidInput, NotFound
from airlock.json_schema import check_json, check_schema, checkable
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
    "ToolArguments",
    "listed_operation",
    "operation",
    "validate_settings",
]

OPERATION_NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
OPENAI_PATHS = {"chat/completions": "POST", "embeddings": "POST", "models": "GET"}
"""The OpenAI API paths (and their methods) a connector may serve; see ``openai_operations``."""


class Params(BaseModel):
    """Base for params models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ToolArguments(BaseModel):
    """The params of a listed operation: any JSON object, checked against its JSON Schema."""

    model_config = ConfigDict(extra="allow")


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
    input_schema: Mapping[str, Any] | None = None
    """A listed operation's params as JSON Schema (its ``params`` is then ToolArguments)."""

    def params_schema(self) -> dict[str, Any]:
        if self.input_schema is not None:
            return copy.deepcopy(dict(self.input_schema))
        return self.params.model_json_schema()

    def parse_params(self, params: Mapping[str, Any], *, within: str = "") -> BaseModel:
        """*params* validated by the params model (and JSON Schema), or InvalidInput naming
        the field (under *within*, e.g. ``params``)."""
        if self.input_schema is not None:
            check_json(self._checked_schema, params, within=within)
        try:
            return self.params.model_validate(dict(params))
        except ValidationError as exc:
            problem = first_problem(exc, within=within)
            raise InvalidInput(str(problem), field=problem.field) from None

    @functools.cached_property
    def _checked_schema(self) -> dict[str, Any]:
        """The input schema params are checked against: bounded in time (``checkable``)."""
        return checkable(self.input_schema or {})

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


def listed_operation(
    *,
    name: str,
    access: Access,
    input_schema: Mapping[str, Any],
    result: type[BaseModel],
    description: str,
    destructive: bool = False,
) -> OperationSpec:
    """An operation a connector found when it opened (see ``Connector.list_operations``):
    its params are the JSON object *input_schema* describes. A schema that is not valid
    JSON Schema (draft 2020-12) is a ValueError."""
    if not OPERATION_NAME.match(name):
        raise ValueError(f"operation name {name!r} must be snake_case")
    check_schema(input_schema)
    first_line = description.strip().splitlines()[0] if description.strip() else ""
    return OperationSpec(
        name,
        access,
        ToolArguments,
        result,
        first_line or name.replace("_", " "),
        "",
        destructive,
        input_schema=copy.deepcopy(dict(input_schema)),
    )


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
    lists_operations: ClassVar[bool] = False
    """Whether the connector lists (more) operations when it opens: core then asks
    :meth:`list_operations` after ``open()`` and runs them through :meth:`run_listed`."""
    listed_result: ClassVar[type[BaseModel]] = Done
    """The result model of every listed operation (core validates their results with it)."""
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
        self.listed: dict[str, OperationSpec] = {}
        """The operations this open connector listed (kept by ``Connector.discover``)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} service={self.service!r}>"

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any], *, service: str) -> BaseModel:
        return validate_settings(cls.Settings, raw, where=f"services.{service}")

    @classmethod
    def credentials_model(cls, settings: BaseModel) -> type[BaseModel]:
        """The credential fields a service with these *settings* takes (``airlock
        credentials add`` asks for them): ``Credentials``, unless the fields depend on the
        settings (an MCP service's ``env`` names them)."""
        return cls.Credentials

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

    async def describe(self, operation: str, params: BaseModel) -> str | None:
        """What a write's *params* act on, in the person's words, shown on the approval
        prompt: "message 'Invoice 42' from bob@example.com in INBOX". *params* are the
        validated params of write *operation*. Core asks when the write is requested,
        before anyone approved anything, and shows the text to the person only, never
        to the agent (it holds no read session): look the target up read-only, say
        nothing the operation's params would not let the person find themselves. None
        (the default): nothing to add; raise, or take longer than the connector host's
        timeout, and the prompt says the target could not be looked up."""
        return None

    async def list_operations(self) -> list[OperationSpec]:
        """The operations found at open (``lists_operations`` connectors): each made with
        :func:`listed_operation`."""
        return []

    async def discover(self) -> dict[str, OperationSpec]:
        """Ask the open connector for its listed operations and keep them; a listed name
        that a declared operation already has is left out (the declared one wins)."""
        if self.lists_operations:
            found = await self.list_operations()
            for spec in found:
                if spec.result is not self.listed_result:
                    raise ConnectorError(
                        f"{self.name} listed {spec.name!r} with a result model other than "
                        f"its listed_result ({self.listed_result.__name__})"
                    )
            self.listed = {s.name: s for s in found if s.name not in self.operations}
        return dict(self.listed)

    async def run_listed(self, spec: OperationSpec, arguments: dict[str, Any]) -> BaseModel:
        """Run a listed operation with its validated *arguments* (a JSON object)."""
        raise NotFound(f"{self.name} has no operation {spec.name!r}")

    def operation_spec(self, operation_name: str) -> OperationSpec:
        """A declared or listed operation of this (open) connector."""
        listed = self.listed.get(operation_name)
        return listed if listed is not None else self.spec(operation_name)

    @classmethod
    def spec(cls, operation_name: str) -> OperationSpec:
        try:
            return cls.operations[operation_name]
        except KeyError:
            raise NotFound(
                f"{cls.name} has no operation {operation_name!r}",
                hint="`airlock services SERVICE` (GET /v1/services) lists the operations",
            ) from None

    async def call(self, operation_name: str, params: Mapping[str, Any] | None) -> BaseModel:
        """Validate *params*, run the operation and validate what it returns."""
        spec = self.operation_spec(operation_name)
        parsed = spec.parse_params(params or {})
        if spec.input_schema is not None:
            result = await self.run_listed(spec, parsed.model_dump(mode="json"))
        else:
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
