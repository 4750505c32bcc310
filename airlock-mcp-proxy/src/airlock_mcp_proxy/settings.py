"""The settings of an `mcp` service and the credentials its `env` refers to."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, model_validator

REFERENCE = re.compile(r"\{credentials\.([A-Za-z_][A-Za-z0-9_]{0,63})\}")
"""``{credentials.token}`` in an env value: the stored credential field ``token``."""


class McpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: list[str] | None = Field(default=None, min_length=1)
    """The argv of a server speaking MCP on stdin/stdout (run as the daemon's user)."""
    url: str | None = Field(default=None, pattern=r"^https?://")
    """Or the address of a streamable HTTP server."""
    env: dict[str, str] = {}
    """Environment of the command; values may hold ``{credentials.FIELD}``."""
    cwd: str | None = None
    tools: list[str] | None = None
    """Only the tools matching one of these globs (default: all)."""
    read_tools: list[str] = []
    """Tools that only read, whatever the server says (globs)."""
    write_tools: list[str] = []
    """Tools that change something, whatever the server says (globs; wins over read_tools)."""
    timeout: float = Field(default=60.0, gt=0, le=3600)
    """Seconds a tool call may take (the server's start may take at least 60)."""

    @model_validator(mode="after")
    def _one_server(self) -> McpSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError("set either command (a stdio server) or url (an HTTP server)")
        if self.url is not None and (self.env or self.cwd):
            raise ValueError("env and cwd apply to a command, not to a url")
        for name in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"env: {name!r} is not a variable name")
        return self

    def credential_fields(self) -> list[str]:
        """The credential fields the env refers to, in order."""
        found = [m.group(1) for value in self.env.values() for m in REFERENCE.finditer(value)]
        return list(dict.fromkeys(found))

    def offers(self, names: tuple[str, str]) -> bool:
        return self.tools is None or _matches(names, self.tools)

    def is_read(self, names: tuple[str, str], read_only_hint: bool | None) -> bool:
        """A read only when the server annotates it read-only or read_tools says so, and
        write_tools does not: anything unsure needs the person's approval call by call.

        *names* are the server's name of the tool and the operation name the person sees
        (``Delete-Repo``, ``delete_repo``): a glob matching either applies."""
        if _matches(names, self.write_tools):
            return False
        return read_only_hint is True or _matches(names, self.read_tools)


def _matches(names: tuple[str, str], globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for name in names for glob in globs)


class McpCredentials(BaseModel):
    """Free-form fields (``airlock credentials add SERVICE``), referred to by ``env``."""

    model_config = ConfigDict(extra="allow")


def credentials_model(settings: McpSettings) -> type[BaseModel]:
    """The credential fields this service's env refers to, each a required secret."""
    fields: dict[str, Any] = {
        name: (SecretStr, Field(description=name)) for name in settings.credential_fields()
    }
    return create_model("McpServiceCredentials", __base__=McpCredentials, **fields)


def resolve_env(env: Mapping[str, str], credentials: Mapping[str, str]) -> dict[str, str]:
    """*env* with each ``{credentials.FIELD}`` replaced by the stored value; a field that
    is not stored is a KeyError naming it (never its value)."""

    def value(match: re.Match[str]) -> str:
        return credentials[match.group(1)]

    return {name: REFERENCE.sub(value, raw) for name, raw in env.items()}
