"""The Python client of the Airlock daemon (see docs/api.md)::

    async with AirlockClient() as airlock:
        await airlock.request_access(services=["gmail"], reason="summarise today's mail")
        msgs = await airlock.gmail.list_messages(limit=10)

The client holds no credentials. It asks the daemon for access, waits while the person
approves with a TOTP code, keeps the session token in memory only, and revokes its
sessions on exit. Services are attributes and their operations methods taking the
operation's parameters as keywords (names from ``GET /v1/services``). A write operation
the daemon answers with ``approval_required`` is approved on its own, bound to its exact
parameters, and retried once. Every failure is an :class:`airlock.errors.AirlockError`;
no daemon on the socket is :class:`airlock.errors.DaemonUnreachable`.

:class:`SyncAirlockClient` is the blocking twin for scripts (``with SyncAirlockClient()
as airlock: airlock.gmail.list_messages(limit=10)``). The CLI and the MCP server use the
lower-level methods: :meth:`~AirlockClient.submit_request` and
:meth:`~AirlockClient.await_approval` (to show the request code while waiting),
:meth:`~AirlockClient.call` with an explicit token, and the person's side (``pending``,
``approve``, ``deny``, ``sessions``, ``revoke``, credentials, ``audit``).
"""

from airlock.clients._answers import StillPending
from airlock.clients._async_client import AirlockClient
from airlock.clients._proxies import OperationMethod, ServiceProxy
from airlock.clients._sync_client import SyncAirlockClient, SyncServiceProxy
from airlock.clients._wallet import HeldSession, WaitCallback, WaitStatus
from airlock.models import Access

__all__ = [
    "Access",
    "AirlockClient",
    "HeldSession",
    "OperationMethod",
    "ServiceProxy",
    "StillPending",
    "SyncAirlockClient",
    "SyncServiceProxy",
    "WaitCallback",
    "WaitStatus",
]
