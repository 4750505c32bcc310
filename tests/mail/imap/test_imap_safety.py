"""Read-only on the wire, injection-proof, and honest about failures: the imap connector
against a real Dovecot, checked by a second IMAP client and the Maildir on disk."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from imapclient import IMAPClient

from airlock.errors import ConnectorAuthError, ConnectorError, InvalidInput, NotFound
from airlock.testing import ConnectorContract, ConnectorFactory, run
from airlock_mail._imap_session import ImapSession
from airlock_mail.imap import ImapConnector
from tests.mail.dovecot import DovecotServer, MailUser
from tests.mail.imap.conftest import ConnectorMaker, call, imap_connector, small_mailbox

pytestmark = pytest.mark.dovecot

READS: list[tuple[str, dict[str, Any]]] = [
    ("list_folders", {}),
    ("list_messages", {"limit": 100}),
    ("list_messages", {"folder": "Archive", "unread_only": True}),
    ("search", {"query": "is:unread has:attachment"}),
    ("search", {"query": "München", "limit": 100}),
    ("count_unread", {}),
    ("count_unread", {"folder": "Drafts"}),
]


def test_no_read_changes_any_flag(
    imap: ConnectorMaker, dovecot: DovecotServer, mail_account: MailUser
) -> None:
    before = dovecot.observe(mail_account), dovecot.files(mail_account)
    connector = imap(security="tls")
    run(connector.check())
    for operation, params in READS:
        call(connector, operation, **params)
    for summary in call(connector, "list_messages", limit=100).messages:
        message = call(connector, "get_message", id=summary.id)
        assert message.unread is summary.unread
    after = dovecot.observe(mail_account), dovecot.files(mail_account)
    assert after == before


def test_the_wire_guard_stops_a_write_on_the_read_connection(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account)
    target = call(connector, "list_messages", limit=1).messages[0]
    assert target.unread
    before = dovecot.observe(fresh_account)
    uid = int(target.id.split(".")[1])

    def sneak(session: Any) -> None:  # what a bug in the read path could try
        session.examine("INBOX")
        session.imap.add_flags([uid], [b"\\Seen"])

    def peek_without_peek(session: Any) -> None:
        session.examine("INBOX")
        session.imap.fetch([uid], [b"BODY[]"])

    def select(session: Any) -> None:
        session.select("INBOX")

    for attempt in (sneak, peek_without_peek, select):
        with pytest.raises(ConnectorError, match="wire guard: refused"):
            run(connector._read(attempt))
    assert dovecot.observe(fresh_account) == before
    assert "STORE" not in dovecot.log().split("user=<" + fresh_account.username)[-1]
    assert call(connector, "get_message", id=target.id).unread  # and the connector recovers


def test_mark_read_and_unread_change_exactly_one_flag(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account, security="starttls")
    target = next(m for m in call(connector, "list_messages", limit=50).messages if m.unread)
    uid = int(target.id.split(".")[1])
    before = dovecot.observe(fresh_account)
    assert call(connector, "mark_read", id=target.id).detail == "marked read"
    after = dovecot.observe(fresh_account)
    expected = dict(before["INBOX"][1])
    expected[uid] = expected[uid] | {b"\\Seen"}
    assert after == {**before, "INBOX": (before["INBOX"][0], expected)}
    assert call(connector, "mark_read", id=target.id).detail == "already read"
    assert call(connector, "mark_unread", id=target.id).detail == "marked unread"
    assert dovecot.observe(fresh_account) == before


def test_move_moves_exactly_one_message(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account)
    target = call(connector, "list_messages", limit=1).messages[0]
    before = dovecot.observe(fresh_account)
    result = call(connector, "move", id=target.id, to_folder="Archive")
    assert result.detail == "moved from INBOX to Archive"
    after = dovecot.observe(fresh_account)
    uid = int(target.id.split(".")[1])
    assert set(after["INBOX"][1]) == set(before["INBOX"][1]) - {uid}
    assert len(after["Archive"][1]) == len(before["Archive"][1]) + 1
    untouched = {k: v for k, v in before.items() if k not in ("INBOX", "Archive")}
    assert {k: v for k, v in after.items() if k in untouched} == untouched
    archived = call(connector, "list_messages", folder="Archive").messages[0]
    assert (archived.subject, archived.unread) == (target.subject, target.unread)
    with pytest.raises(NotFound, match="no message"):
        call(connector, "mark_read", id=target.id)  # it is gone from INBOX
    with pytest.raises(NotFound, match="no folder"):
        call(connector, "move", id=archived.id, folder="Archive", to_folder="Nowhere")


def test_a_move_without_the_move_extension_expunges_only_that_message(
    imap: ConnectorMaker,
    dovecot: DovecotServer,
    fresh_account: MailUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector = imap(fresh_account)
    first, second = call(connector, "list_messages", limit=2).messages
    with IMAPClient(dovecot.host, dovecot.port, ssl=False) as other:  # another mail program
        other.login(fresh_account.username, fresh_account.password)
        other.select_folder("INBOX")
        other.add_flags([int(second.id.split(".")[1])], [b"\\Deleted"])  # not expunged
    # Dovecot has MOVE; take it out of what the write session believes the server offers.
    connect = ImapSession.connect

    def connect_without_move(session: ImapSession, username: str, password: str) -> None:
        connect(session, username, password)
        session._capabilities -= {b"MOVE"}

    monkeypatch.setattr(ImapSession, "connect", connect_without_move)
    call(connector, "move", id=first.id, to_folder="Junk")
    inbox = dovecot.observe(fresh_account)["INBOX"][1]
    assert int(first.id.split(".")[1]) not in inbox
    assert b"\\Deleted" in inbox[int(second.id.split(".")[1])]  # still there


@pytest.mark.parametrize(
    "folder",
    [
        "INBOX\r\nA1 UID STORE 1:* +FLAGS (\\Deleted)",
        "INBOX\nX",
        'INBOX" (UNSEEN)',
        "INBOX) (",
        "{5}\r\nINBOX",
        "*",
        "%",
        "ALL",
        "../../etc",
    ],
)
def test_folder_injection_is_refused_and_changes_nothing(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser, folder: str
) -> None:
    connector = imap(fresh_account)
    before = dovecot.observe(fresh_account)
    for operation, params in [
        ("list_messages", {"folder": folder}),
        ("count_unread", {"folder": folder}),
        ("search", {"folder": folder, "query": "x"}),
        ("mark_read", {"folder": folder, "id": "1.1"}),
        ("move", {"to_folder": folder, "id": "1.1"}),
    ]:
        with pytest.raises((InvalidInput, NotFound)) as raised:
            call(connector, operation, **params)
        assert raised.value.message
    assert dovecot.observe(fresh_account) == before


@pytest.mark.parametrize(
    "query",
    [
        'x" OR ALL "',
        ") (DELETED",
        "ALL",
        "{5}",
        "a\\",
        'subject:"\\" ALL"',
        "from:x}{",
        "a\rb",
        "a\nA1 LOGOUT",
        "München {3}",
    ],
)
def test_search_injection_finds_text_never_syntax(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser, query: str
) -> None:
    connector = imap(fresh_account)
    before = dovecot.observe(fresh_account)
    if any(c in query for c in "\r\n") or query.count('"') % 2:
        with pytest.raises(InvalidInput) as raised:  # a clear error, nothing sent
            call(connector, "search", query=query)
        assert raised.value.field == "query"
    else:
        found = call(connector, "search", query=query, limit=100).messages
        assert len(found) < 10  # searched for those characters, not ALL
    assert dovecot.observe(fresh_account) == before
    assert call(connector, "count_unread").unread >= 0  # the connection is still in sync


@pytest.mark.parametrize(
    "message_id",
    [
        "1",
        "1.2.3",
        "01.5",
        "1.0",
        "4294967296.1",
        "1.1:*",
        "1.1,2",
        "1.1 (FLAGS)",
        "1.1\r\nA1 EXPUNGE",
        "-1.5",
        "1.*",
    ],
)
def test_bad_ids_are_refused_before_the_wire(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser, message_id: str
) -> None:
    connector = imap(fresh_account)
    before = dovecot.observe(fresh_account)
    for operation in ("get_message", "mark_read", "mark_unread"):
        with pytest.raises(InvalidInput) as raised:
            call(connector, operation, id=message_id)
        assert raised.value.field == "id"
    with pytest.raises(InvalidInput):
        call(connector, "move", id=message_id, to_folder="Archive")
    assert connector.commands_sent == 0  # refused before even connecting
    assert dovecot.observe(fresh_account) == before


def test_a_dropped_connection_is_re_established(
    imap: ConnectorMaker, dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account)
    unread = call(connector, "count_unread").unread
    first = connector._session
    dovecot.kick(fresh_account.username)
    assert call(connector, "count_unread").unread == unread
    assert connector._session is not first
    dovecot.kick(fresh_account.username)
    assert len(call(connector, "list_messages", limit=3).messages) == 3


def test_a_server_that_is_gone_is_a_clear_error(
    dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = imap_connector(dovecot, fresh_account)
    connector.server = connector.server.model_copy(update={"port": 1})
    with pytest.raises(ConnectorError, match="refused the connection"):
        run(connector.check())


def test_a_wrong_password_is_a_clear_auth_error(
    imap: ConnectorMaker, fresh_account: MailUser
) -> None:
    connector = imap(fresh_account, password="not-the-password")
    with pytest.raises(ConnectorAuthError, match="refused the login for 'user") as raised:
        run(connector.check())
    text = str(raised.value) + (raised.value.hint or "")
    assert "AUTHENTICATIONFAILED" in text
    assert "not-the-password" not in text
    assert "credentials add mail" in text


def test_a_non_ascii_password_is_sent_as_a_literal(dovecot: DovecotServer) -> None:
    account = dovecot.add_user("umlaut@example.test", "pässwörd-ß", small_mailbox()[:3])
    connector = imap_connector(dovecot, account)
    try:
        assert run(connector.check()).summary.startswith("connected: ")
    finally:
        run(connector.close())


def test_an_untrusted_certificate_is_refused(
    dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = imap_connector(dovecot, fresh_account, security="tls")
    connector.server = connector.server.model_copy(update={"ca_file": None})
    with pytest.raises(ConnectorError, match="could not be verified"):
        run(connector.check())


@pytest.mark.parametrize("host", ["imap.example.com", "10.0.0.1", "127.0.0.1.example.com"])
def test_plain_text_is_refused_off_this_machine(host: str) -> None:
    with pytest.raises(InvalidInput, match="only for a server on this machine"):
        ImapConnector.parse_settings(
            {"host": host, "port": 143, "security": "none", "username": "me"}, service="work"
        )
    for fine in ("127.0.0.1", "localhost", "::1"):
        ImapConnector.parse_settings(
            {"host": fine, "security": "none", "username": "me"}, service="work"
        )


class TestImapContract(ConnectorContract):
    connector_class = ImapConnector
    read_params: ClassVar[dict[str, dict[str, Any]]] = {
        "list_folders": {},
        "list_messages": {"limit": 50, "since": "2025-01-01"},
        "search": {"query": 'is:unread newer_than:30d "code"'},
        "get_message": {"id": "1.1"},
        "count_unread": {"folder": "Archive"},
    }

    @pytest.fixture
    def connector_factory(
        self, dovecot: DovecotServer, fresh_account: MailUser
    ) -> ConnectorFactory:
        self.server, self.account = dovecot, fresh_account
        probe = imap_connector(dovecot, fresh_account)
        first = call(probe, "list_messages", limit=1).messages[0].id
        run(probe.close())
        self.read_params = {**self.read_params, "get_message": {"id": first}}

        async def make() -> ImapConnector:
            connector = imap_connector(dovecot, fresh_account, security="tls")
            await connector.open()
            return connector

        return make

    def snapshot(self) -> object:
        return self.server.observe(self.account), self.server.files(self.account)
