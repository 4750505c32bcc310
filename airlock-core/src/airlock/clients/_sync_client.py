"""The blocking twin of :class:`AirlockClient`, for scripts.

It does not copy the client's logic: it runs one :class:`AirlockClient` on a private
event loop in a background thread and waits for each call. A thread (rather than
``asyncio.run`` per call) keeps one connection and one set of sessions for the
client's life, and works even when the caller already runs an event loop (Jupyter).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from airlock.clients._async_client import DEFAULT_WAIT, AirlockClient
from airlock.clients._proxies import ServiceProxy
from airlock.clients._wallet import HeldSession

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread, until closed."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="airlock-client")
        self._thread.daemon = True
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("SyncAirlockClient called from its own event loop")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C while waiting for approval stops the wait too
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _Blocking(Generic[P, T]):
    """Turns an ``async def`` of AirlockClient into a blocking method of the twin."""

    def __init__(self, method: Callable[Concatenate[AirlockClient, P], Coroutine[Any, Any, T]]):
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncAirlockClient, owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, obj: SyncAirlockClient | None, owner: type[Any]) -> Self | Callable[P, T]:
        if obj is None:
            return self
        method, client, runner = self._method, obj.client, obj._runner

        def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
            return runner.run(method(client, *args, **kwargs))

        blocking.__doc__ = method.__doc__
        return blocking


class SyncServiceProxy:
    """``airlock.gmail`` of the twin: ``airlock.gmail.list_messages(limit=10)`` blocks."""

    def __init__(self, proxy: ServiceProxy, runner: _LoopThread) -> None:
        self._proxy = proxy
        self._runner = runner

    def __repr__(self) -> str:
        return repr(self._proxy)

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self._proxy, operation)

        def blocking(**params: Any) -> Any:
            return self._runner.run(method(**params))

        return blocking

    def __dir__(self) -> list[str]:
        return dir(self._proxy)


class SyncAirlockClient:
    """``with SyncAirlockClient() as airlock:`` — the same methods as AirlockClient, blocking."""

    def __init__(
        self,
        socket: str | Path | None = None,
        *,
        timeout: float = 10.0,
        approval_wait: float = DEFAULT_WAIT,
        agent: str | None = None,
    ) -> None:
        self.client = AirlockClient(
            socket, timeout=timeout, approval_wait=approval_wait, agent=agent
        )
        self._runner = _LoopThread()
        self._closed = False

    def __repr__(self) -> str:
        return repr(self.client).replace("<AirlockClient", "<SyncAirlockClient", 1)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Revoke this client's sessions, close the connection and stop the loop (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self.client.aclose())
        finally:
            self._runner.close()

    def service(self, name: str) -> SyncServiceProxy:
        return SyncServiceProxy(self.client.service(name), self._runner)

    def __getattr__(self, name: str) -> SyncServiceProxy:
        if name.startswith("_") or name == "client":
            raise AttributeError(name)
        return self.service(name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(self.client.cached_catalogue() or {})})

    status = _Blocking(AirlockClient.status)
    services = _Blocking(AirlockClient.services)
    submit_request = _Blocking(AirlockClient.submit_request)
    await_approval = _Blocking(AirlockClient.await_approval)
    request_access = _Blocking(AirlockClient.request_access)
    call = _Blocking(AirlockClient.call)
    invoke = _Blocking(AirlockClient.invoke)
    pending = _Blocking(AirlockClient.pending)
    approve = _Blocking(AirlockClient.approve)
    deny = _Blocking(AirlockClient.deny)
    sessions = _Blocking(AirlockClient.sessions)
    revoke = _Blocking(AirlockClient.revoke)
    revoke_all = _Blocking(AirlockClient.revoke_all)
    reload = _Blocking(AirlockClient.reload)
    unlock = _Blocking(AirlockClient.unlock)
    totp_reset = _Blocking(AirlockClient.totp_reset)
    totp_confirm = _Blocking(AirlockClient.totp_confirm)
    list_credentials = _Blocking(AirlockClient.list_credentials)
    add_credentials = _Blocking(AirlockClient.add_credentials)
    get_credential = _Blocking(AirlockClient.get_credential)
    remove_credentials = _Blocking(AirlockClient.remove_credentials)
    audit = _Blocking(AirlockClient.audit)

    def held_sessions(self) -> list[HeldSession]:
        return self.client.held_sessions()
