"""What a mail write acts on, as the person's prompt shows it (``describe``), read from a
real Dovecot without changing the message (it stays unread)."""

from __future__ import annotations

import pytest

from airlock.plugin import InvalidInput, NotFound
from airlock.testing import run
from tests.mail.dovecot import MailUser
from tests.mail.imap.conftest import ConnectorMaker, call


def test_a_move_is_described_by_the_message_it_names_which_stays_unread(
    imap: ConnectorMaker, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account)
    unread = call(connector, "list_messages", limit=100, unread_only=True).messages[0]
    spec = connector.spec("move")
    params = spec.parse_params({"id": unread.id, "to_folder": "Archive"})
    said = run(connector.describe("move", params))
    assert said is not None
    assert said.startswith("message in INBOX, ")
    assert said.endswith(f", from {unread.from_}: “{unread.subject}”")
    after = call(connector, "get_message", id=unread.id)
    assert after.unread, "describing a write must not mark the message read"


def test_an_unknown_or_malformed_id_is_an_error_not_a_description(
    imap: ConnectorMaker, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account)
    spec = connector.spec("mark_read")
    with pytest.raises(NotFound):
        run(connector.describe("mark_read", spec.parse_params({"id": "1.999999"})))
    with pytest.raises(InvalidInput):
        run(connector.describe("mark_read", spec.parse_params({"id": "nonsense"})))
