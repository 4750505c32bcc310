"""An in-process daemon runtime with an injected clock, a notebook connector and a
recording notifier: for the approval and gateway rules that depend on time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pyotp
from pydantic import BaseModel

from airlock.common.clock import FakeClock
from airlock.connector_host.in_process import InProcessHost
from airlock.daemon.runtime import Runtime
from airlock.errors import ConnectorError
from airlock.framework.connectors import (
    Access,
    CheckResult,
    Connector,
    Done,
    OperationSpec,
    Params,
    listed_operation,
    operation,
)
from airlock.framework.hookspecs import hookimpl
from airlock.framework.notifiers import Delivery, Notice, Notifier, Prompt, Reply
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.security.totp import save_secret
from airlock.settings.config import AirlockConfig
from airlock.settings.paths import resolve_paths

NOTES: dict[str, str] = {}


class AskParams(Params):
    """A question to a priced test service."""

    prompt: str


class Answer(BaseModel):
    text: str


class NoteParams(Params):
    name: str


class Note(BaseModel):
    name: str
    text: str


class SaveParams(Params):
    name: str
    text: str


class Notebook(Connector):
    """A service whose state is a dict: reads look, writes change it."""

    name = "notebook"
    title = "In-memory notebook"
    opened = 0
    closed = 0

    async def open(self) -> None:
        Notebook.opened += 1

    async def close(self) -> None:
        Notebook.closed += 1

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, summary=f"{len(NOTES)} notes")

    @operation(access=Access.READ, params=NoteParams, result=Note, description="Read a note.")
    async def read_note(self, params: NoteParams) -> Note:
        return Note(name=params.name, text=NOTES.get(params.name, ""))

    @operation(access=Access.WRITE, params=SaveParams, result=Done, description="Save a note.")
    async def save_note(self, params: SaveParams) -> Done:
        NOTES[params.name] = params.text
        return Done()

    described: ClassVar[dict[str, str]] = {}
    """What ``describe`` says of a note a write names (tests of the prompt's "Acts on"
    line); ``"!"`` makes it fail. Empty: it describes nothing."""

    held: ClassVar[asyncio.Event | None] = None
    """Set: ``describe`` waits for it (a service slow to answer)."""

    async def describe(self, operation: str, params: BaseModel) -> str | None:
        if not isinstance(params, SaveParams) or params.name not in Notebook.described:
            return None
        if Notebook.held is not None:
            await Notebook.held.wait()
        said = Notebook.described[params.name]
        if said == "!":
            raise ConnectorError("the notebook is unreachable: secret-detail-9K")
        return said


class ToolResult(BaseModel):
    text: str


CALC_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
    "additionalProperties": False,
}


class Toolbox(Connector):
    """A service whose operations are only known once it opens (like an MCP server's
    tools): ``peek`` reads, ``stash`` writes NOTES; both listed with a JSON Schema."""

    name = "toolbox"
    title = "Listed tools"
    lists_operations = True
    listed_result = ToolResult
    listings = 0
    opens = 0
    broken = False
    add_access = Access.READ
    """What ``add`` is listed as (a server's next start may say otherwise)."""

    async def open(self) -> None:
        Toolbox.opens += 1
        if Toolbox.broken:
            raise ConnectorError("toolbox: the server did not start")

    async def list_operations(self) -> list[OperationSpec]:
        Toolbox.listings += 1
        text = {"type": "object", "properties": {"text": {"type": "string"}}}
        return [
            listed_operation(
                name="add",
                access=Toolbox.add_access,
                input_schema=CALC_SCHEMA,
                result=ToolResult,
                description="Add two integers.\nMore text the listing leaves out.",
            ),
            listed_operation(
                name="stash",
                access=Access.WRITE,
                input_schema={**text, "required": ["text"]},
                result=ToolResult,
                description="Stash a text.",
            ),
        ]

    async def run_listed(self, spec: OperationSpec, arguments: dict[str, Any]) -> BaseModel:
        if spec.name == "add":
            if spec.access is not Access.READ:
                NOTES["add"] = "written"
            return ToolResult(text=str(arguments["a"] + arguments["b"]))
        NOTES["stash"] = arguments["text"]
        return ToolResult(text="stashed")


class Phone(Notifier):
    """A notifier whose 'person' answers through a queue; it records what it was sent."""

    name = "phone"

    def __init__(self, settings: BaseModel, credentials: BaseModel) -> None:
        super().__init__(settings, credentials)
        self.sent: list[Prompt] = []
        self.notices: list[str] = []
        self.inbox: asyncio.Queue[Reply] = asyncio.Queue()
        self.broken = False

    async def send(self, prompt: Prompt) -> Delivery:
        if self.broken:
            raise ConnectionError("phone unreachable")
        self.sent.append(prompt)
        return Delivery(notifier=self.name, ref=f"msg-{len(self.sent)}")

    async def notify(self, notice: Notice) -> None:
        self.notices.append(notice.text)

    async def replies(self) -> AsyncIterator[Reply]:
        while True:
            yield await self.inbox.get()

    def reply(self, text: str, in_reply_to: str | None = None) -> None:
        self.inbox.put_nowait(
            Reply(sender="me", text=text, in_reply_to=in_reply_to, received_at=datetime.now(UTC))
        )


class TestPlugin:
    @hookimpl
    def register_connectors(self) -> Iterable[type[Connector]]:
        return [Notebook, Toolbox]

    @hookimpl
    def register_notifiers(self) -> Iterable[type[Notifier]]:
        return [Phone]


def make_runtime(tmp_path: Path, clock: FakeClock, **overrides: Any) -> tuple[Runtime, pyotp.TOTP]:
    NOTES.clear()
    paths = resolve_paths({"AIRLOCK_HOME": str(tmp_path / "home")})
    paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(paths.totp_file, secret)
    config = AirlockConfig(
        services=overrides.pop("services", {"notes": {"connector": "notebook"}}),
        approvals={"notifiers": ["console", "phone"], **overrides.pop("approvals", {})},
        **overrides,
    )
    pm = get_plugin_manager(load_entry_points=False, env={}, extra_plugins=[TestPlugin()])
    host = InProcessHost(get_connectors(pm), paths.connectors_dir)
    return Runtime(paths, pm, clock=clock, config=config, host=host), pyotp.TOTP(secret)


def run_runtime(tmp_path: Path, scenario: Callable[[Runtime], Awaitable[None]]) -> Runtime:
    """Start a runtime of :func:`make_runtime` on a fake clock, play *scenario* on it,
    stop it; the runtime, for what the test reads afterwards."""
    runtime, _ = make_runtime(tmp_path, FakeClock(start=1_800_000_000.0))

    async def main() -> None:
        await runtime.start()
        try:
            await scenario(runtime)
        finally:
            await runtime.stop()

    asyncio.run(main())
    return runtime
