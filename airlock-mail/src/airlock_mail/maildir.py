"""The ``maildir`` connector: a local Maildir++ tree, no credentials (see docs/mail.md).

Useful for mail fetched by mbsync/offlineimap/getmail, for archives, and for the demo.
Ids are Maildir keys, unique per folder. Reads only open files read-only, so they
never change a flag or move a message from ``new/`` to ``cur/``; ``mark_read`` does
move a message from ``new/`` to ``cur/``, because only there can a file carry flags.

Filesystem work is synchronous and runs in a worker thread (``asyncio.to_thread``) so
the daemon keeps serving other requests meanwhile; only the check that an unchanged
folder's unread count still stands (two ``fstat`` calls, no listing) runs on the loop.

What only working needs (asyncio, the MIME parser with the ``email`` and ``html``
packages) is imported when the connector first works: ``airlock status`` and ``airlock
services`` import this module to describe a service (docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airlock.plugin import NotFound
from airlock_mail.connector import MailConnector
from airlock_mail.maildir_store import KEY_PATTERN, Entry, MaildirStore, is_maildir
from airlock_mail.model import Folder, Message, MessageSummary
from airlock_mail.query import AttachmentTerm, Query, TextTerm, day_start, matches

__all__ = ["MaildirConnector", "MaildirSettings"]

MESSAGE_BYTES = 64 * 1024 * 1024  # get_message reads at most this much of one file
HEAD_BYTES = 64 * 1024  # enough for any sane header block, to sort by Date
_DATE_CACHE_SIZE = 100_000
_P = ParamSpec("_P")
_T = TypeVar("_T")


async def _in_thread(work: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``asyncio.to_thread(work, ...)``; asyncio is imported when the connector works."""
    import asyncio

    return await asyncio.to_thread(work, *args, **kwargs)


class MaildirSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="The Maildir: a directory with cur/, new/ and tmp/.")

    @field_validator("path")
    @classmethod
    def _is_maildir(cls, value: Path) -> Path:
        path = value.expanduser()
        if not is_maildir(path):
            raise ValueError(f"{path} is not a Maildir (it needs cur/, new/ and tmp/)")
        return path


class MaildirConnector(MailConnector):
    name = "maildir"
    title = "Local Maildir"
    open_world = False  # local files, no server out in the world
    Settings = MaildirSettings
    id_pattern = KEY_PATTERN
    id_example = "1740744000.M552847P1.hostname"

    @cached_property
    def store(self) -> MaildirStore:
        if not isinstance(self.settings, MaildirSettings):
            raise TypeError("MaildirConnector takes MaildirSettings (see parse_settings)")
        return MaildirStore(self.settings.path)

    @cached_property
    def _date_cache(self) -> dict[tuple[str, str, float, int], datetime]:
        """(folder, file name, mtime, size) -> sort date; a renamed or rewritten file
        gets a new key, so the cache never serves a stale date."""
        return {}

    async def open(self) -> None:
        await _in_thread(self.store.check)

    # ------------------------------------------------------------------ reads

    async def load_folders(self) -> list[Folder]:
        return await _in_thread(self._folders)

    def _folders(self) -> list[Folder]:
        found = []
        for name in self.store.folder_names():
            entries = self.store.entries(name)
            unread = sum(1 for e in entries if not e.seen)
            found.append(Folder(name=name, messages=len(entries), unread=unread))
        return found

    async def load_summaries(
        self, folder: str, *, limit: int, unread_only: bool, since: date | None
    ) -> list[MessageSummary]:
        return await _in_thread(self._summaries, folder, limit, unread_only, since)

    def _summaries(
        self, folder: str, limit: int, unread_only: bool, since: date | None
    ) -> list[MessageSummary]:
        entries = self._newest_first(folder)
        if unread_only:
            entries = [(e, d) for e, d in entries if not e.seen]
        if since is not None:
            entries = [(e, d) for e, d in entries if d >= day_start(since)]
        return [self._summary(folder, e) for e, _ in entries[:limit]]

    async def search_folder(self, folder: str, query: Query, *, limit: int) -> list[MessageSummary]:
        return await _in_thread(self._search, folder, query, limit)

    def _search(self, folder: str, query: Query, limit: int) -> list[MessageSummary]:
        """Newest first, cheapest test first: flags and headers (from the header block
        alone), then the summary (attachments), then the full text if the query has
        free text."""
        now = self.now()
        header_terms = Query(
            tuple(t for t in query.terms if not isinstance(t, TextTerm | AttachmentTerm))
        )
        found: list[MessageSummary] = []
        for entry, _ in self._newest_first(folder):
            if len(found) >= limit:
                break
            head = self._summary(folder, entry, headers_only=True) if header_terms.terms else None
            if head is not None and not matches(header_terms, head, now):
                continue
            summary = self._summary(folder, entry)
            candidate = self._message(folder, entry, 200_000) if query.needs_body else summary
            if matches(query, candidate, now):
                found.append(summary)
        return found

    async def load_message(self, folder: str, message_id: str, *, max_chars: int) -> Message:
        return await _in_thread(self._find_message, folder, message_id, max_chars)

    def _find_message(self, folder: str, message_id: str, max_chars: int) -> Message:
        return self._message(folder, self.store.find(folder, message_id), max_chars)

    async def load_unread_count(self, folder: str) -> int:
        cached = self.store.cached_unread_count(folder)  # no listing: on the loop
        if cached is not None:
            return cached
        return await _in_thread(self.store.unread_count, folder)

    # ------------------------------------------------------------------ writes

    async def store_seen(self, folder: str, message_id: str, *, seen: bool) -> bool:
        return await _in_thread(self._mark_seen, folder, message_id, seen)

    def _mark_seen(self, folder: str, message_id: str, seen: bool) -> bool:
        return self.store.set_seen(folder, self.store.find(folder, message_id), seen=seen)

    async def store_move(self, folder: str, message_id: str, to_folder: str) -> None:
        await _in_thread(self._move, folder, message_id, to_folder)

    def _move(self, folder: str, message_id: str, to_folder: str) -> None:
        entry = self.store.find(folder, message_id)
        if to_folder not in self.store.folder_names():
            raise NotFound(f"no folder {to_folder!r}", hint="list_folders shows the folders")
        self.store.move(folder, entry, to_folder)

    # ------------------------------------------------------------------ helpers

    def _summary(self, folder: str, entry: Entry, *, headers_only: bool = False) -> MessageSummary:
        """*headers_only*: from the header block alone, right but for snippet and
        attachments (a cheap first pass for search)."""
        from airlock_mail.mime import SUMMARY_BYTES, parse_summary

        if headers_only:
            raw = self.store.read_head(folder, entry, limit=HEAD_BYTES)
        else:
            raw = self.store.read(folder, entry, limit=SUMMARY_BYTES)
        return parse_summary(
            raw,
            id=entry.key,
            folder=folder,
            unread=not entry.seen,
            size=entry.size,
            headers_only=headers_only,
        )

    def _message(self, folder: str, entry: Entry, max_chars: int) -> Message:
        from airlock_mail.mime import parse_message

        raw = self.store.read(folder, entry, limit=MESSAGE_BYTES)
        return parse_message(
            raw,
            id=entry.key,
            folder=folder,
            unread=not entry.seen,
            size=entry.size,
            max_chars=max_chars,
        )

    def _newest_first(self, folder: str) -> list[tuple[Entry, datetime]]:
        """Every message with its date (Date header, else file mtime), newest first."""
        dated = [(entry, self._date(folder, entry)) for entry in self.store.entries(folder)]
        dated.sort(key=lambda pair: (pair[1], pair[0].key), reverse=True)
        return dated

    def _date(self, folder: str, entry: Entry) -> datetime:
        cache_key = (folder, entry.name, entry.mtime, entry.size)
        cached = self._date_cache.get(cache_key)
        if cached is None:
            from airlock_mail.mime import header_date

            head = self.store.read_head(folder, entry, limit=HEAD_BYTES)
            cached = header_date(head) or datetime.fromtimestamp(entry.mtime, UTC)
            if len(self._date_cache) >= _DATE_CACHE_SIZE:
                self._date_cache.clear()
            self._date_cache[cache_key] = cached
        return cached
