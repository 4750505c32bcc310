"""A test plugin with one tiny connector, so a daemon has a service to approve access to
without any mail package installed (each notifier package is tested on its own)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from airlock.framework.connectors import Access, CheckResult, Connector, Params, operation
from airlock.framework.hookspecs import hookimpl


class EchoParams(Params):
    text: str = "hello"


class Echoed(BaseModel):
    text: str


class EchoConnector(Connector):
    name = "echo"
    title = "Echo (tests)"

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, summary="echo is always there")

    @operation(access=Access.READ, params=EchoParams, result=Echoed, description="Echo text.")
    async def echo(self, params: EchoParams) -> Echoed:
        return Echoed(text=params.text)


class EchoPlugin:
    @hookimpl
    def register_connectors(self) -> Iterable[type[Connector]]:
        return [EchoConnector]
