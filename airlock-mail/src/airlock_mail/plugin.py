"""Airlock plugin hooks of airlock-mail. Only hooks here: ``airlock --help`` imports this
module, so the connectors (pydantic models, the email package) load only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airlock.plugin import hookimpl

if TYPE_CHECKING:
    from airlock.plugin import Connector


@hookimpl
def register_connectors() -> Iterable[type[Connector]]:
    from airlock_mail.imap import ImapConnector
    from airlock_mail.maildir import MaildirConnector

    return [MaildirConnector, ImapConnector]
