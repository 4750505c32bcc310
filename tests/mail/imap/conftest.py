"""Fixtures for the IMAP tests: a real Dovecot, accounts on it, connectors pointed at it.

``mail_account`` is the big shared mailbox (200+ messages); tests only read it. A test
that writes takes ``fresh_account``, an account of its own, so no test can disturb
another's data. Connectors are built the way core builds them: settings and
credentials parsed from plain mappings by the connector class.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airlock.common.clock import FakeClock
from airlock.testing import run
from airlock_mail.imap import ImapConnector
from tests.mail.corpus import NOW, build_corpus
from tests.mail.dovecot import DovecotServer, MailUser, dovecot  # noqa: F401  # fixture
from tests.mail.mailbox import EXTRA_FOLDERS, SeedMessage, dovecot_mailbox, generated_mail

PASSWORD = "s3cret-password"  # a test value
SHARED = "me@example.test"
_numbers = itertools.count(1)

ConnectorMaker = Callable[..., ImapConnector]


def server_settings(server: DovecotServer, security: str) -> dict[str, Any]:
    """Settings reaching *server* with *security*: tls on the IMAPS port, starttls and
    none on the plain one; the test CA is trusted through ``ca_file``."""
    port = server.tls_port if security == "tls" else server.port
    return {"host": server.host, "port": port, "security": security, "ca_file": str(server.ca_file)}


def imap_connector(
    server: DovecotServer,
    account: MailUser,
    *,
    security: str = "none",
    password: str | None = None,
    cls: type[ImapConnector] = ImapConnector,
) -> ImapConnector:
    settings = cls.parse_settings(
        {**server_settings(server, security), "username": account.username}, service="mail"
    )
    credentials = cls.parse_credentials(
        {"password": account.password if password is None else password}, service="mail"
    )
    return cls(settings, credentials, service="mail", clock=FakeClock(NOW.timestamp()))


def small_mailbox() -> list[SeedMessage]:
    """The corpus plus a few generated messages: enough for writes, quick to create."""
    corpus = [SeedMessage(m.folder, m.raw, m.date, seen=m.seen) for m in build_corpus()]
    return generated_mail(5) + corpus


@pytest.fixture(scope="session")
def mail_account(dovecot: DovecotServer) -> MailUser:  # noqa: F811
    """The shared 200+ message mailbox. Read it; never write to it. (Created once per
    server, however many test folders import this fixture.)"""
    existing = dovecot.users.get(SHARED)
    if existing is not None:
        return existing
    return dovecot.add_user(SHARED, PASSWORD, dovecot_mailbox(), folders=EXTRA_FOLDERS)


@pytest.fixture
def fresh_account(dovecot: DovecotServer) -> MailUser:  # noqa: F811
    """An account of this test's own, seeded with :func:`small_mailbox`."""
    name = f"user{next(_numbers)}@example.test"
    while name in dovecot.users:
        name = f"user{next(_numbers)}@example.test"
    return dovecot.add_user(name, PASSWORD, small_mailbox(), folders=EXTRA_FOLDERS)


@pytest.fixture
def imap(dovecot: DovecotServer, mail_account: MailUser) -> Iterator[ConnectorMaker]:  # noqa: F811
    """Make connectors (default: the shared mailbox, plain loopback); all are closed after."""
    made: list[ImapConnector] = []

    def make(account: MailUser | None = None, **kw: Any) -> ImapConnector:
        connector = imap_connector(dovecot, account or mail_account, **kw)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        run(connector.close())


def call(connector: ImapConnector, operation: str, **params: Any) -> Any:
    """Call an operation the way core does (params validated, result checked)."""
    return run(connector.call(operation, params))
