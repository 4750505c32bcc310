"""``airlock serve`` with a ``trial`` connector that misbehaves on request (hangs, blocks
its event loop, crashes, returns a result that does not fit its model, asks the agent to
wait forever), so the tests can show the connector host contains it. Run as
``python -m tests.e2e.host_trial`` with AIRLOCK_HOME set; the daemon hands the plugin
to its connector host by name."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterable

from pydantic import BaseModel, Field, field_serializer

from airlock.errors import ServiceRateLimited
from airlock.framework.connectors import Access, Connector, Params, operation
from airlock.framework.hookspecs import hookimpl


class TrialCredentials(BaseModel):
    token: str = ""


class Nothing(Params):
    pass


class Nap(Params):
    seconds: float = Field(0.0, ge=0, le=120)
    mark: str = Field("", description="A file created once the nap has begun (tests wait on it)")


class Peek(Params):
    path: str


class Stamp(Params):
    path: str
    seconds: float = Field(0.0, ge=0, le=120)


class Said(BaseModel):
    text: str
    pid: int


class Loose(BaseModel):
    """Serialises to something it does not accept back (a connector's bug)."""

    count: int

    @field_serializer("count")
    def _as_words(self, value: int) -> str:
        return f"{value} things"


class TrialConnector(Connector):
    name = "trial"
    title = "Misbehaving connector (tests)"
    Credentials = TrialCredentials

    @operation(access=Access.READ, params=Nothing, result=Said, description="Who runs me.")
    async def whoami(self, params: Nothing) -> Said:
        assert isinstance(self.credentials, TrialCredentials)
        return Said(text="token set" if self.credentials.token else "no token", pid=os.getpid())

    @operation(access=Access.READ, params=Nap, result=Said, description="Wait, politely.")
    async def nap(self, params: Nap) -> Said:
        if params.mark:
            os.close(os.open(params.mark, os.O_WRONLY | os.O_CREAT, 0o600))
        await asyncio.sleep(params.seconds)
        return Said(text="rested", pid=os.getpid())

    @operation(access=Access.READ, params=Nap, result=Said, description="Block the loop.")
    async def block(self, params: Nap) -> Said:
        time.sleep(params.seconds)  # noqa: ASYNC251 -- the point: a stuck event loop
        return Said(text="blocked", pid=os.getpid())

    @operation(access=Access.READ, params=Peek, result=Said, description="Read a file.")
    async def peek(self, params: Peek) -> Said:
        """What a parser bug that took the host over would try first."""
        try:
            with open(params.path, encoding="utf-8", errors="replace") as handle:  # noqa: ASYNC230
                return Said(text=handle.read(100), pid=os.getpid())
        except OSError as exc:
            return Said(text=f"refused: {exc.strerror}", pid=os.getpid())

    @operation(access=Access.WRITE, params=Stamp, result=Said, description="Change a file.")
    async def stamp(self, params: Stamp) -> Said:
        """A write that reaches its service (a line added to a file), then waits for the
        service's answer."""
        with open(params.path, "a", encoding="utf-8") as handle:  # noqa: ASYNC230
            handle.write(f"stamped by {os.getpid()}\n")
        await asyncio.sleep(params.seconds)
        return Said(text="stamped", pid=os.getpid())

    @operation(access=Access.READ, params=Nothing, result=Said, description="Crash.")
    async def crash(self, params: Nothing) -> Said:
        raise RuntimeError("parser exploded near token=hunter2")

    @operation(access=Access.READ, params=Nothing, result=Said, description="Wait forever.")
    async def slow_down(self, params: Nothing) -> Said:
        raise ServiceRateLimited("come back never", retry_after=float("inf"))

    @operation(access=Access.READ, params=Nothing, result=Said, description="Odd text.")
    async def odd_text(self, params: Nothing) -> Said:
        # What json.loads makes of a service's "\\ud800" (an MCP server's, an API's):
        # half of a UTF-16 pair, which no UTF-8 encoder takes.
        return Said(text=json.loads('"lone \\ud800 half, whole \\ud83d\\ude00"'), pid=0)

    @operation(access=Access.READ, params=Nothing, result=Loose, description="Bad result.")
    async def bad_result(self, params: Nothing) -> Loose:
        return Loose(count=3)


class TrialPlugin:
    @hookimpl
    def register_connectors(self) -> Iterable[type[Connector]]:
        return [TrialConnector]


def main() -> None:
    from airlock.common.logs import configure_logging
    from airlock.daemon.server import serve
    from airlock.framework.plugins import get_plugin_manager
    from airlock.settings.paths import resolve_paths

    configure_logging(json=True)
    pm = get_plugin_manager(extra_plugins=[TrialPlugin()])
    asyncio.run(serve(resolve_paths(), pm))


if __name__ == "__main__":
    main()
