"""The `mcp` connector: any MCP server behind Airlock. Its operations are the server's
tools, listed when the service opens; a tool the server marks read-only is a read,
every other one a write that the person approves call by call."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

from airlock.plugin import (
    Access,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorError,
    NotFound,
    OperationSpec,
    get_logger,
    listed_operation,
    withhold,
)
from airlock_mcp_proxy.results import McpToolResult, error_result, tool_result
from airlock_mcp_proxy.settings import (
    McpCredentials,
    McpSettings,
    credentials_model,
    resolve_env,
)
from airlock_mcp_proxy.upstream import Upstream

log = get_logger("airlock_mcp_proxy")
MAX_TOOLS = 500
"""More tools than an agent can be shown; the rest are left out (and logged)."""
MAX_SCHEMA_CHARS = 64 * 1024
"""A tool whose input schema is longer (as JSON) is left out: every agent's tool list
carries it, and real tools need a few KiB."""
MAX_PAGES = 50
"""Pages of ``tools/list`` asked for at most: a server whose pages never end (empty ones
naming a next one) must not keep the service opening forever."""
LIST_DEADLINE = 60.0
"""Seconds all of a listing's pages may take: what came by then is listed."""


def operation_name(tool: str) -> str | None:
    """An Airlock operation name for an MCP tool name (``read_file``, ``get-issue`` ->
    ``get_issue``); None when nothing usable is left."""
    name = re.sub(r"[^a-z0-9_]+", "_", tool.lower()).strip("_")
    name = re.sub(r"^[^a-z]+", "", name)[:48].rstrip("_")
    return name if len(name) >= 2 else None


def spellings(secret: str) -> set[str]:
    """*secret* and the ways a server's honest echo spells it: URL-encoded (an HTTP
    library's error quoting the URL it called), and escaped in JSON text (with and
    without ``ensure_ascii``). Each is withheld wherever the secret itself is."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def plain_line(text: str, secrets: Iterable[str] = ()) -> str:
    """The first line of a server's description with control characters removed (the
    person reads it in a terminal, `airlock services`, where escapes could repaint it)
    and the vault's *secrets* masked (agents read it before any approval)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    plain = "".join(c for c in first if unicodedata.category(c)[0] != "C")
    return str(withhold(plain, secrets))[:300].strip()


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's input schema, refusing arguments it does not name unless it says
    otherwise: a misspelt argument must not be silently dropped by the server."""
    strict = dict(schema)
    strict.setdefault("type", "object")
    if "additionalProperties" not in strict and "patternProperties" not in strict:
        strict["additionalProperties"] = False
    return strict


class McpProxy(Connector[McpSettings]):
    name = "mcp"
    title = "MCP server"
    Settings = McpSettings
    Credentials = McpCredentials
    lists_operations = True
    listed_result = McpToolResult
    _restarts_allowed: ClassVar[int] = 1

    def __init__(self, settings: BaseModel, credentials: BaseModel, *, service: str) -> None:
        super().__init__(settings, credentials, service=service)
        self._upstream: Upstream | None = None
        self._tools: dict[str, str] = {}
        """Operation name -> the server's tool name."""
        self._restarts = 0
        self._starting = asyncio.Lock()
        self._closed = False

    @classmethod
    def credentials_model(cls, settings: BaseModel) -> type[BaseModel]:
        assert isinstance(settings, McpSettings)
        return credentials_model(settings)

    # -- the server -------------------------------------------------------------------

    def _stored(self) -> dict[str, str]:
        raw = self.credentials.model_dump()
        return {
            k: v.get_secret_value() if isinstance(v, SecretStr) else str(v)
            for k, v in raw.items()
            if v is not None
        }

    def _upstream_for(self) -> Upstream:
        stored = self._stored()
        needed = self.settings.credential_fields()
        missing = [f for f in needed if f not in stored]
        if missing:
            raise ConnectorAuthError(
                f"{self.service}: no stored credential {missing[0]!r}",
                hint=f"run `airlock credentials add {self.service}`",
            )
        env = resolve_env(self.settings.env, stored)
        secrets = {spelled for f in needed for spelled in spellings(stored[f])}
        return Upstream(
            service=self.service,
            command=self.settings.command,
            url=self.settings.url,
            env=env,
            cwd=self.settings.cwd,
            timeout=self.settings.timeout,
            secrets=sorted(secrets, key=len, reverse=True),
        )

    async def _start(self) -> Any:
        upstream = self._upstream_for()
        try:
            client = await upstream.start()
        except ConnectorAuthError:
            raise
        except Exception as exc:
            raise ConnectorError(
                f"{self.service}: the MCP server did not start ({type(exc).__name__})",
                hint="the daemon log has the server's own output",
            ) from None
        if self._closed:
            # The service closed while the server started: nobody would ever stop it.
            await upstream.stop()
            raise ConnectorError(f"{self.service}: closed while the MCP server started")
        self._upstream = upstream
        return client

    async def _client(self) -> Any:
        """The connected client; a server that exited is started again, once (by one of
        the calls that find it gone: the others wait for it)."""
        async with self._starting:
            return await self._client_now()

    async def _client_now(self) -> Any:
        upstream = self._upstream
        if upstream is not None and upstream.running:
            return upstream.client
        if upstream is not None:
            await upstream.stop()
            self._upstream = None
            if self._restarts >= self._restarts_allowed:
                raise ConnectorError(
                    f"{self.service}: the MCP server stopped again and is not restarted",
                    hint="the daemon log has the server's own output",
                )
            self._restarts += 1
            log.warning("mcp_server_restarted", service=self.service)
            client = await self._start()
            # Started again, it may be another version: what it lists now is what runs.
            self.listed = {spec.name: spec for spec in await self._listing(client)}
            return client
        return await self._start()

    async def open(self) -> None:
        self._closed = False
        await self._start()

    async def close(self) -> None:
        self._closed = True
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.stop()

    async def check(self) -> CheckResult:
        tools = await self.list_operations()
        return CheckResult(ok=True, summary=f"connected: {len(tools)} tools")

    # -- tools as operations ----------------------------------------------------------

    async def list_operations(self) -> list[OperationSpec]:
        return await self._listing(await self._client())

    async def _listing(self, client: Any) -> list[OperationSpec]:
        """The tools as operations, each page's taken as it arrives: a tool left out (a
        schema over MAX_SCHEMA_CHARS) is not kept while later pages come (pages of one
        15 MiB tool each held 3 GB by the 13th)."""
        secrets = self._upstream.secrets if self._upstream is not None else []
        specs: dict[str, OperationSpec] = {}
        tools: dict[str, str] = {}
        clashes: set[str] = set()
        listed = 0
        cursor: str | None = None
        try:
            async with asyncio.timeout(LIST_DEADLINE):
                for _ in range(MAX_PAGES):
                    page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                    _no_output_checks(client, page.tools)
                    for tool in page.tools[: MAX_TOOLS - listed]:
                        spec = self._spec(tool, secrets)
                        if spec is None or spec.name in clashes:
                            left_out = str(withhold(tool.name, secrets))[:80]
                            log.warning("mcp_tool_left_out", service=self.service, tool=left_out)
                            continue
                        if spec.name in specs:
                            if tools[spec.name] != tool.name:  # listed twice: the first
                                self._clash(spec.name, specs, tools, clashes)
                            continue
                        specs[spec.name] = spec
                        tools[spec.name] = tool.name
                    listed += len(page.tools)
                    cursor = page.next_cursor
                    del page
                    if not cursor or listed >= MAX_TOOLS:
                        break
                else:
                    log.warning("mcp_tool_list_cut", service=self.service, pages=MAX_PAGES)
        except TimeoutError:
            log.warning("mcp_tool_list_cut", service=self.service, seconds=LIST_DEADLINE)
        self._tools = tools
        return list(specs.values())

    def _clash(
        self,
        name: str,
        specs: dict[str, OperationSpec],
        tools: dict[str, str],
        clashes: set[str],
    ) -> None:
        """Two of the server's tools are one operation *name* (``Delete-Repo`` and
        ``delete_repo``): neither is offered. Kept, the first listed won, and the person
        who approved ``delete_repo`` could not tell which of them ran; a server could list
        them in another order when started again."""
        del specs[name], tools[name]
        clashes.add(name)
        log.warning("mcp_tools_clash", service=self.service, operation=name)

    def _spec(self, tool: Any, secrets: list[str]) -> OperationSpec | None:
        """The tool as an operation; a stored secret the server put in its name,
        description or schema is masked (the agent sees them without any approval)."""
        name = operation_name(str(withhold(tool.name, secrets)))
        if name is None or not self.settings.offers((tool.name, name)):
            return None
        if len(json.dumps(tool.input_schema)) > MAX_SCHEMA_CHARS:
            return None
        hints = tool.annotations
        read_only = hints.read_only_hint if hints is not None else None
        read = self.settings.is_read((tool.name, name), read_only)
        destructive = hints.destructive_hint if hints is not None else None
        try:
            return listed_operation(
                name=name,
                access=Access.READ if read else Access.WRITE,
                input_schema=withhold(strict_schema(tool.input_schema), secrets),
                result=McpToolResult,
                description=plain_line(tool.description or tool.title or "", secrets) or name,
                destructive=not read and destructive is not False,
            )
        except ValueError:
            return None

    async def run_listed(self, spec: OperationSpec, arguments: dict[str, Any]) -> BaseModel:
        from mcp.shared.exceptions import MCPError
        from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        client = await self._client()  # a server started again has listed its tools anew
        tool, now = self._tools.get(spec.name), self.listed.get(spec.name)
        if tool is None or now is None:
            raise NotFound(f"{self.service} has no tool {spec.name!r}")
        if spec.access is Access.READ and now.access is not Access.READ:
            raise ConnectorError(
                f"{self.service}.{spec.name} is listed as a {now.access.value} now, "
                "no longer a read",
                hint="call it again: it needs the person's approval",
            )
        upstream = self._upstream
        secrets = upstream.secrets if upstream is not None else []
        try:
            answer = await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code not in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                # The server answered with an error: the agent reads it like a tool error.
                return error_result(tool, exc.message, secrets)
            failure = "timed out" if exc.code == REQUEST_TIMEOUT else "stopped"
            if upstream is not None:
                failure = upstream.ended or failure
                # Gone or stuck: ended here, started again by the next call (once).
                await upstream.stop()
            raise ConnectorError(
                f"{self.service}.{spec.name}: the MCP server {failure}",
                hint="the daemon log has the server's own output",
            ) from None
        except Exception as exc:
            raise ConnectorError(
                f"{self.service}.{spec.name}: the MCP server failed ({type(exc).__name__})",
                hint="the daemon log has the server's own output",
            ) from None
        return tool_result(tool, answer, secrets)


def _no_output_checks(client: Any, tools: list[Any]) -> None:
    """Tell the MCP library these tools declare no output schema. It checks a result's
    structured content against the schema the server declared, with Python's
    backtracking ``re`` on the connector host's event loop: a ``pattern`` such as
    ``^(a+)+$`` and an answer of forty a's and a "!" would stall every service the host
    runs for years. The proxy never relies on that check (results go to the agent as
    content, untrusted); the input schemas it does use are bounded (``strict_schema``)."""
    schemas = getattr(client.session, "_tool_output_schemas", None)
    if isinstance(schemas, dict):
        for tool in tools:
            schemas[tool.name] = None
