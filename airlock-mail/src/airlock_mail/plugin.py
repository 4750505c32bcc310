"""Airlock plugin hooks of airlock-mail. Only hooks here: ``airlock --help`` imports this
module, so the connectors (pydantic models, the email package) load only when asked for."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.plugin import hookimpl


@hookimpl
def register_connectors() -> Iterable[str]:
    return [
        "maildir = airlock_mail.maildir:MaildirConnector",
        "imap = airlock_mail.imap:ImapConnector",
    ]
