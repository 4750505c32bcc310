"""``config.yaml`` plus ``AIRLOCK_<SECTION>__<KEY>`` environment variables
(docs/configuration.md).

Environment variables win over the file. Credentials never live here: they live in the
vault, keyed by service name. An invalid file is refused with the file, the key and the
reason.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from airlock.errors import ConfigError, InvalidInput
from airlock.models import first_problem
from airlock.settings.config_file import CONFIG_CHANGED as CONFIG_CHANGED
from airlock.settings.config_file import config_digest as config_digest
from airlock.settings.config_file import read_config_file
from airlock.settings.config_plain import LOCKOUT_FLOOR, MAX_FAILURES
from airlock.settings.durations import parse_duration

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _duration(value: object) -> int:
    if not isinstance(value, str | int | float):
        raise ValueError("expected a duration like 90s, 60m or 8h")
    try:
        return parse_duration(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


Duration = Annotated[int, BeforeValidator(_duration)]
"""A field type: accepts ``"60m"`` and stores seconds."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TotpConfig(Section):
    issuer: str = "Airlock"
    account: str = "me@airlock"
    digits: int = Field(6, ge=6, le=8)
    period: int = Field(30, ge=15, le=120)


class SessionsConfig(Section):
    default_ttl: Duration = 3600
    max_ttl: Duration = 8 * 3600


class ApprovalsConfig(Section):
    timeout: Duration = 300
    # Bounded so that no config, one an agent running as you edited included, makes
    # guessing a code fast: at most MAX_FAILURES wrong codes per FLOOR seconds at best.
    max_failures: int = Field(5, ge=1, le=MAX_FAILURES)
    failure_window: Duration = Field(900, ge=LOCKOUT_FLOOR)
    lockout: Duration = Field(900, ge=LOCKOUT_FLOOR)
    notifiers: list[str] = Field(default_factory=lambda: ["console"])
    retention: Duration = 7 * 86400
    """How long finished requests and ended sessions stay in the state database."""


class ServiceConfig(BaseModel):
    """One configured service: which connector, plus that connector's own settings."""

    model_config = ConfigDict(extra="allow")

    connector: str

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ServicePermissions(Section):
    """One service's block of ``permissions`` (``gmail: {write: deny}``)."""

    write: Literal["ask", "deny"] = "ask"
    max_usd: float | None = Field(None, ge=0, allow_inf_nan=False)


DEFAULT_RATE_LIMIT = 60


class PermissionsConfig(BaseModel):
    """``rate_limit`` plus one optional block a service, each validated at load."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, ServicePermissions] = Field(init=False)

    rate_limit: int = Field(DEFAULT_RATE_LIMIT, ge=1, le=100_000)

    @property
    def blocks(self) -> dict[str, ServicePermissions]:
        """The per-service blocks, by service name."""
        return dict(self.model_extra or {})

    def for_service(self, service: str) -> ServicePermissions:
        """*service*'s own block; the defaults (writes ask) when it has none."""
        return self.blocks.get(service) or ServicePermissions()


class DaemonConfig(Section):
    allowed_uids: list[int] = Field(default_factory=list)
    idle_timeout: Duration = 30
    """A connection is closed after this long without a complete request (or body)."""
    max_connections_per_uid: int = Field(64, ge=1)


class McpConfig(Section):
    # Below the ~60 s after which common MCP clients give up on a tool call.
    approval_wait: Duration = 45


class ConnectorHostConfig(Section):
    """Where connectors run (docs/security.md, "Privilege separation")."""

    socket: Path | None = None
    """Connect to a connector host serving this Unix socket (isolated mode, written by
    ``airlock service install --isolated``); unset, the daemon starts its own as a child
    process."""
    timeout: Duration = 30
    """The longest an operation (or a gap between streamed chunks) may take before the
    agent gets a 504 and the call is cancelled."""


class AuditConfig(Section):
    rotate_bytes: int = Field(64 * 1024 * 1024, ge=4096)
    max_bytes: int = Field(2 * 1024 * 1024 * 1024, ge=16384)
    """The audit directory's size budget: past it the oldest rotated files are deleted."""
    keep_for: Duration = Field(7 * 86400, ge=1)
    """No file holding a record this recent is deleted for the budget."""

    @model_validator(mode="after")
    def _room_to_rotate(self) -> AuditConfig:
        if self.max_bytes < 4 * self.rotate_bytes:
            raise ValueError("max_bytes must be at least 4 times rotate_bytes")
        return self


class DashboardConfig(Section):
    """The web dashboard: ``listen`` is ``HOST:PORT`` or ``off`` (see docs/dashboard.md)."""

    listen: str = "127.0.0.1:8410"
    allow_remote: bool = False
    session_ttl: Duration = 8 * 3600

    @model_validator(mode="after")
    def _address(self) -> DashboardConfig:
        from airlock.dashboard.address import parse_listen

        try:
            parse_listen(self.listen, allow_remote=self.allow_remote)
        except ConfigError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None
        return self


class AirlockConfig(BaseModel):
    """The whole configuration: the file's sections, each overridable from the environment
    (:func:`from_sources`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    totp: TotpConfig = Field(default_factory=TotpConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    notifiers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    mcp: McpConfig = Field(default_factory=McpConfig)
    connector_host: ConnectorHostConfig = Field(default_factory=ConnectorHostConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        for name in services:
            if not SERVICE_NAME.match(name):
                raise ValueError(
                    f"service name {name!r} must be lowercase letters, digits, - or _ "
                    "(at most 32, starting with a letter)"
                )
        return services

    def unknown_permission_blocks(self) -> list[str]:
        """Blocks of ``permissions`` that name no configured service (a typo would
        otherwise leave the real service at the defaults)."""
        return sorted(set(self.permissions.blocks) - set(self.services))

    @classmethod
    def from_sources(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> AirlockConfig:
        """The file's *data* with ``AIRLOCK_<SECTION>__<KEY>`` variables of *env* over it."""
        return cls(**_merged(dict(data), environment_overrides(env)))


ENV_PREFIX = "AIRLOCK_"
ENV_NESTED = "__"


def environment_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``AIRLOCK_<SECTION>__<KEY>=value`` (any case) as nested data, for the sections the
    config has; other ``AIRLOCK_`` variables (``AIRLOCK_HOME``...) are not config.

    A whole section (``AIRLOCK_TOTP='{"digits": 8}'``), a list or mapping key of a section
    (``AIRLOCK_APPROVALS__NOTIFIERS='["console"]'``) and a service's setting are read as
    JSON when they are JSON; every other value is text, converted by the key's own type."""
    found: dict[str, Any] = {}
    for name, value in env.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split(ENV_NESTED)
        section = AirlockConfig.model_fields.get(path[0])
        if section is None or not all(path):
            continue
        target = found
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = _json_or_text(value) if _structured(section, path) else value
    return found


def _structured(section: Any, path: list[str]) -> bool:
    """Whether the variable at *path* holds JSON: a section, a list or mapping key of one,
    or a service's own setting (``AIRLOCK_SERVICES__WORK__PORT=993``, ``...__ARGS='[]'``)."""
    if len(path) == 1 or (path[0] == "services" and len(path) == 3):
        return True
    model = section.annotation
    if len(path) != 2 or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    field = model.model_fields.get(path[1])
    origin = getattr(field.annotation, "__origin__", field.annotation) if field else None
    return origin in (list, dict)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _merged(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """*over* laid on *base*, mapping by mapping."""
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = _merged(dict(base[key]), value)
        else:
            base[key] = value
    return base


def _variable_setting(key: str, env: Mapping[str, str]) -> str | None:
    """The ``AIRLOCK_<SECTION>__<KEY>`` variable that set *key* (or what holds it)."""
    parts = key.split(".")
    for name in env:
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split(ENV_NESTED)
        if path[0] in AirlockConfig.model_fields and all(path) and parts[: len(path)] == path:
            return name
    return None


def load_config(path: Path) -> AirlockConfig:
    """Read *path* (missing file means defaults) and the environment."""
    return validated_config(path, read_config_file(path), os.environ)


def validated_config(path: Path, data: Mapping[str, Any], env: Mapping[str, str]) -> AirlockConfig:
    """The file's *data* (:func:`read_config_file`) with *env* over it, checked by the
    models; a problem is refused naming *path* and the key."""
    try:
        config = AirlockConfig.from_sources(data, env)
    except ValidationError as exc:
        problem = first_problem(exc)
        key = problem.field or "(top level)"
        variable = _variable_setting(key, env)
        if variable is not None:
            raise ConfigError(
                f"{variable}: key {key}: {problem.message}",
                hint="fix the variable or unset it (see docs/configuration.md)",
                field=key,
            ) from None
        raise ConfigError(
            f"{path}: key {key}: {problem.message}",
            hint="fix the key or remove it to use the default (see docs/configuration.md)",
            field=key,
        ) from None
    unknown = config.unknown_permission_blocks()
    if unknown:
        name = unknown[0]
        raise ConfigError(
            f"{path}: key permissions.{name}: there is no service named {name!r}",
            hint=f"configured services: {', '.join(sorted(config.services)) or 'none'}",
            field=f"permissions.{name}",
        )
    return config
