"""The ``imap`` connector: any IMAP server, read-only on the wire (see docs/mail.md).

Reads use one authenticated connection, kept while the connector is open and rebuilt
once if the server dropped it. That connection's wire guard lets only read commands
out (``_imap_guard``): folders are opened with EXAMINE, bodies fetched with BODY.PEEK,
so no read can set ``\\Seen`` even by mistake. Writes (``mark_read``, ``mark_unread``,
``move``), which core runs only after the person approved that exact operation, each
open a connection of their own whose guard also allows SELECT, UID STORE, UID MOVE and
UID COPY/EXPUNGE, and log out when done.

Performance: a page of summaries costs three commands whatever the limit (EXAMINE, UID
SEARCH, one UID FETCH of the whole page; ``_imap_summaries``); ``count_unread`` is one
STATUS; ``list_folders`` one LIST-STATUS where the server has it.

imapclient blocks, so every call runs in a worker thread, one at a time per connector.
Providers (``gmail``, ``icloud``) subclass this and adjust the hooks near the top.

What only working needs (asyncio, imaplib and ssl, the summaries and the MIME parser with
the ``email`` and ``html`` packages, imapclient) is imported when the connector first
works: ``airlock status`` and ``airlock services`` import this module to describe a
service (docs/plugins.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, SecretStr

from airlock.plugin import (
    AirlockError,
    CheckResult,
    Clock,
    ConnectorAuthError,
    ConnectorError,
    NotFound,
)
from airlock_mail._imap_calls import to_the_end
from airlock_mail._imap_guard import READ_ONLY, READ_WRITE, GuardViolation, WirePolicy
from airlock_mail._imap_ids import ID_EXAMPLE, ID_PATTERN, ImapId, parse_id
from airlock_mail._imap_search import (
    SearchCriteria,
    imap_string,
    list_criteria,
    query_criteria,
)
from airlock_mail._imap_settings import (
    ADDRESS_PATTERN,
    SPECIAL_USE_ALIASES,
    AddressCredentials,
    ImapCredentials,
    ImapSettings,
    ServerSettings,
)
from airlock_mail._imap_write import move_message, set_seen
from airlock_mail.connector import MailConnector
from airlock_mail.model import INBOX, Folder, Message, MessageSummary
from airlock_mail.query import Query

if TYPE_CHECKING:
    import asyncio

    from airlock_mail._imap_endpoint import Endpoint

    # imapclient loads when the first session opens, not when the connector is declared
    from airlock_mail._imap_session import ImapSession

# Public, also for provider connectors built on this one (airlock-gmail, airlock-icloud):
# the session and search pieces let a provider add its own search without reaching
# into this package's private modules.
__all__ = [
    "ADDRESS_PATTERN",
    "SPECIAL_USE_ALIASES",
    "AddressCredentials",
    "ImapConnector",
    "ImapCredentials",
    "ImapSession",
    "ImapSettings",
    "SearchCriteria",
    "ServerSettings",
    "imap_string",
    "query_criteria",
]

T = TypeVar("T")


def __getattr__(name: str) -> Any:
    if name == "ImapSession":  # public, but imported only when asked for
        from airlock_mail._imap_session import ImapSession

        return ImapSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MESSAGE_BYTES = 64 * 1024 * 1024  # get_message fetches at most this much of one message


class ImapConnector(MailConnector):
    name = "imap"
    title = "IMAP mail"
    Settings: ClassVar[type[BaseModel]] = ImapSettings
    Credentials: ClassVar[type[BaseModel]] = ImapCredentials
    id_pattern = ID_PATTERN
    id_example = ID_EXAMPLE

    folder_aliases: ClassVar[Mapping[str, tuple[bytes | str, ...]]] = SPECIAL_USE_ALIASES
    """Lower-case folder names that mean a special-use folder when no folder has them."""

    def __init__(
        self,
        settings: BaseModel,
        credentials: BaseModel,
        *,
        service: str,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(settings, ServerSettings):
            raise TypeError(f"{type(self).__name__} takes its Settings model (parse_settings)")
        super().__init__(settings, credentials, service=service, clock=clock)
        self.server = settings
        self._session: ImapSession | None = None
        self._active: ImapSession | None = None  # the session the running call uses
        self._held: asyncio.Lock | None = None

    # ------------------------------------------------------------------ provider hooks

    def login_identity(self) -> tuple[str, SecretStr]:
        """The user name and password to LOGIN with."""
        credentials = self.credentials
        if isinstance(credentials, AddressCredentials):
            return credentials.address, credentials.app_password
        if isinstance(self.settings, ImapSettings) and isinstance(credentials, ImapCredentials):
            return self.settings.username, credentials.password
        raise TypeError(f"{type(self).__name__}: credentials of the wrong model")

    def login_error(self, username: str, server_text: str) -> AirlockError:
        """The error for a refused LOGIN; providers explain their own answers."""
        return ConnectorAuthError(
            f"{self.where} refused the login for {username!r}: {server_text}",
            hint=f"check the user name and password (`airlock credentials add {self.service}`)",
        )

    def summary_extras(self, session: ImapSession) -> tuple[bytes, ...]:
        """Fetch items to add to summaries and messages (Gmail: its labels)."""
        return ()

    @property
    def where(self) -> str:
        return f"{self.title} {self.server.host}:{self.server.port}"

    def endpoint(self) -> Endpoint:
        from airlock_mail._imap_endpoint import Endpoint

        s = self.server
        return Endpoint(s.host, s.port, s.security, timeout=s.timeout, ca_file=s.ca_file)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await self._read(lambda session: None)

    @property
    def _lock(self) -> asyncio.Lock:
        """One call at a time on the connection (made on first use: asyncio is imported
        when the connector works)."""
        if self._held is None:
            import asyncio

            self._held = asyncio.Lock()
        return self._held

    async def close(self) -> None:
        async with self._lock:
            session, self._session = self._session, None
            if session is not None:
                await to_the_end(session.cut, session.close)

    async def check(self) -> CheckResult:
        """Log in and count INBOX: "connected: 1,234 messages, 12 unread in INBOX"."""
        counts = await self._read(lambda session: session.status(INBOX))
        messages, unread = counts.get(b"MESSAGES", 0), counts.get(b"UNSEEN", 0)
        return CheckResult(
            ok=True, summary=f"connected: {messages:,} messages, {unread:,} unread in INBOX"
        )

    @property
    def commands_sent(self) -> int:
        """IMAP commands the read connection has sent (for the benchmark and tests)."""
        return self._session.commands_sent if self._session and self._session.client else 0

    # ------------------------------------------------------------------ reads

    async def load_folders(self) -> list[Folder]:
        return await self._read(lambda session: session.folder_counts())

    async def load_unread_count(self, folder: str) -> int:
        def count(session: ImapSession) -> int:
            return session.status(session.folder(folder), ["UNSEEN"]).get(b"UNSEEN", 0)

        return await self._read(count)

    async def load_summaries(
        self, folder: str, *, limit: int, unread_only: bool, since: date | None
    ) -> list[MessageSummary]:
        criteria = list_criteria(unread_only=unread_only, since=since)
        return await self._read(lambda session: self._page(session, folder, criteria, limit))

    async def search_folder(self, folder: str, query: Query, *, limit: int) -> list[MessageSummary]:
        def run(session: ImapSession) -> list[MessageSummary]:
            return self._page(session, folder, query_criteria(query, now=self.now()), limit)

        return await self._read(run)

    async def load_message(self, folder: str, message_id: str, *, max_chars: int) -> Message:
        import asyncio

        mid = parse_id(message_id)
        # Fetched on the connection, parsed off it: a stranger's mail slow to parse
        # must not hold up every other call (no timeout stops a computing thread).
        parse = await self._read(lambda session: self._message(session, folder, mid, max_chars))
        return await asyncio.to_thread(parse)

    def _page(
        self, session: ImapSession, folder: str, criteria: SearchCriteria, limit: int
    ) -> list[MessageSummary]:
        """Newest first (highest UID first): EXAMINE, UID SEARCH, one UID FETCH."""
        from airlock_mail._imap_summaries import summary_items, to_summary

        name = session.folder(folder)
        uidvalidity = session.examine(name)
        uids = sorted(session.search(criteria), reverse=True)
        items = summary_items(self.summary_extras(session))
        found: list[MessageSummary] = []
        # Some terms are decided on the summaries (see SearchCriteria.recheck); if they
        # drop candidates, the next, bigger page is fetched.
        now = self.now()
        start, size = 0, limit
        while start < len(uids) and len(found) < limit:
            page = uids[start : start + size]
            fetched = session.fetch(page, items)
            for uid in page:
                if uid in fetched:
                    summary = to_summary(
                        fetched[uid], message_id=ImapId(uidvalidity, uid), folder=name
                    )
                    if criteria.keeps(summary, now):
                        found.append(summary)
            start, size = start + size, min(size * 2, 400)
        return found[:limit]

    def _message(
        self, session: ImapSession, folder: str, mid: ImapId, max_chars: int
    ) -> Callable[[], Message]:
        """Fetch the message; returns its parse, to run once the connection is free."""
        from airlock_mail import mime
        from airlock_mail._imap_summaries import labels_of

        name = session.folder(folder)
        mid.check_current(session.examine(name), name)
        items = [
            b"FLAGS",
            b"RFC822.SIZE",
            f"BODY.PEEK[]<0.{MESSAGE_BYTES}>".encode(),
            *self.summary_extras(session),
        ]
        found = session.fetch([mid.uid], items).get(mid.uid)
        if found is None:
            raise NotFound(f"no message {mid} in {name!r}", hint="list_messages shows the ids")
        raw = next((v for k, v in found.items() if k.startswith(b"BODY[]")), b"")
        return functools.partial(
            mime.parse_message,
            raw if isinstance(raw, bytes) else b"",
            id=str(mid),
            folder=name,
            unread=b"\\Seen" not in found.get(b"FLAGS", ()),
            size=int(found.get(b"RFC822.SIZE") or 0),
            max_chars=max_chars,
            labels=labels_of(found),
        )

    # ------------------------------------------------------------------ writes

    async def store_seen(self, folder: str, message_id: str, *, seen: bool) -> bool:
        mid = parse_id(message_id)
        return await self._write(lambda session: set_seen(session, folder, mid, seen=seen))

    async def store_move(self, folder: str, message_id: str, to_folder: str) -> None:
        mid = parse_id(message_id)
        await self._write(lambda session: move_message(session, folder, mid, to_folder))

    # ------------------------------------------------------------------ connections

    async def _read(self, work: Callable[[ImapSession], T]) -> T:
        async with self._lock:
            self._active = None
            return await to_the_end(self._cut, self._on_read_session, work)

    async def _write(self, work: Callable[[ImapSession], T]) -> T:
        async with self._lock:
            self._active = None
            return await to_the_end(self._cut, self._on_write_session, work)

    def _cut(self) -> None:
        """The running call was given up: end its connection (see ``_imap_calls``)."""
        if self._active is not None:
            self._active.cut()

    def _on_read_session(self, work: Callable[[ImapSession], T]) -> T:
        """Run *work* on the shared read connection; reconnect once if it was dropped."""
        for attempt in (1, 2):
            fresh = self._session is None
            if self._session is None:
                self._session = self._connect(READ_ONLY)
            session = self._active = self._session
            try:
                return self._translated(work, session)
            except ConnectorError:
                if session.client is None:  # the guard closed it: start clean next time
                    self._session = None
                raise
            except _Dropped as dropped:
                session.discard()
                self._session = None
                if fresh or attempt == 2 or session.cut_off:
                    raise ConnectorError(
                        f"lost the connection to {self.where}: {dropped.reason}",
                        hint="try again; check the network and the server",
                    ) from None
            finally:
                if session.cut_off:  # given up: the next call connects anew
                    session.discard()
                    self._session = None
        raise AssertionError("unreachable")  # pragma: no cover

    def _on_write_session(self, work: Callable[[ImapSession], T]) -> T:
        """Run one approved write on a connection of its own, then log out."""
        session = self._connect(READ_WRITE)
        try:
            return self._translated(work, session)
        except _Dropped as dropped:
            raise ConnectorError(
                f"lost the connection to {self.where} during a write: {dropped.reason}",
                hint="check the message's state with get_message before trying again",
            ) from None
        finally:
            session.close()

    def _translated(self, work: Callable[[ImapSession], T], session: ImapSession) -> T:
        import imaplib

        from airlock_mail._imap_errors import is_dropped, server_refused

        try:
            return work(session)
        except AirlockError:
            raise
        except GuardViolation as exc:
            session.discard()
            raise ConnectorError(f"blocked by the IMAP wire guard: {exc}") from None
        except imaplib.IMAP4.error as exc:
            if is_dropped(exc):
                raise _Dropped(str(exc)) from None
            raise server_refused(exc, where=self.where) from None
        except Exception as exc:
            if is_dropped(exc):
                raise _Dropped(str(exc) or type(exc).__name__) from None
            raise

    def _connect(self, policy: WirePolicy) -> ImapSession:
        from airlock_mail._imap_endpoint import LoginRefused
        from airlock_mail._imap_errors import connect_error
        from airlock_mail._imap_session import ImapSession

        username, password = self.login_identity()
        session = self._active = ImapSession(self.endpoint(), policy, aliases=self.folder_aliases)
        try:
            session.connect(username, password.get_secret_value())
        except LoginRefused as exc:
            raise self.login_error(username, str(exc)) from None
        except AirlockError:
            raise
        except Exception as exc:
            raise connect_error(exc, where=self.where) from None
        return session


class _Dropped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
