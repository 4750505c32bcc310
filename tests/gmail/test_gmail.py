"""The gmail connector against a scripted responder speaking Gmail's IMAP wire forms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from airlock.errors import ConnectorAuthError, ConnectorError, InvalidInput
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.testing import ConnectorContract, ConnectorFactory, run
from airlock_gmail.connector import APP_PASSWORDS, GmailConnector, GmailCredentials
from tests.gmail.responder import CAPABILITY, ECHOING, UIDVALIDITY, Script, gmail_responder

ADDRESS = "me@gmail.com"
APP_PASSWORD = "abcd efgh ijkl mnop"  # as Google shows it; the responder's is without spaces


@pytest.fixture
def gmail() -> Iterator[tuple[int, Script]]:
    with gmail_responder() as served:
        yield served


def connector(port: int, address: str = ADDRESS, password: str = APP_PASSWORD) -> GmailConnector:
    settings = GmailConnector.parse_settings(
        {"host": "127.0.0.1", "port": port, "security": "none"}, service="gmail"
    )
    credentials = GmailConnector.parse_credentials(
        {"address": address, "app_password": password}, service="gmail"
    )
    return GmailConnector(settings, credentials, service="gmail")


def call(gm: GmailConnector, operation: str, **params: Any) -> Any:
    return run(gm.call(operation, params))


def test_gmail_defaults_and_credential_prompts() -> None:
    settings = GmailConnector.parse_settings({}, service="gmail")
    assert (settings.host, settings.port, settings.security) == ("imap.gmail.com", 993, "tls")  # type: ignore[attr-defined]
    fields = GmailCredentials.model_fields
    assert list(fields) == ["address", "app_password"]
    assert APP_PASSWORDS in (fields["app_password"].description or "")
    assert "Gmail address" in (fields["address"].description or "")
    with pytest.raises(InvalidInput):
        GmailConnector.parse_credentials(
            {"address": "not an address", "app_password": "x"}, service="g"
        )


def test_gmail_is_a_registered_connector() -> None:
    assert get_connectors(get_plugin_manager())["gmail"] is GmailConnector


def test_search_sends_gmail_syntax_whole_to_x_gm_raw(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    found = call(connector(port), "search", query="has:attachment newer_than:2d")
    assert script.sent("UID SEARCH") == [
        b'UID SEARCH CHARSET UTF-8 X-GM-RAW "has:attachment newer_than:2d"'
    ]
    assert [m.subject for m in found.messages] == ["Your invoice"]
    assert found.messages[0].has_attachments


def test_full_gmail_syntax_is_passed_through_not_parsed(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    query = '{from:alice OR label:work} -in:spam subject:"a \\"b\\"" ) ALL'
    call(connector(port), "search", query=query)
    assert script.searches == [query]
    (line,) = script.sent("UID SEARCH")
    assert line == (
        b"UID SEARCH CHARSET UTF-8 X-GM-RAW "
        b'"{from:alice OR label:work} -in:spam subject:\\"a \\\\\\"b\\\\\\"\\" ) ALL"'
    )


def test_without_gmail_extensions_the_shared_syntax_is_translated() -> None:
    script = Script(capability=CAPABILITY.replace("X-GM-EXT-1 ", ""))
    with gmail_responder(script) as (port, _):
        gm = connector(port)
        call(gm, "search", query="from:alice is:unread")
        assert script.sent("UID SEARCH") == [b'UID SEARCH FROM "alice" UNSEEN']
        assert all(m.labels == [] for m in call(gm, "list_messages").messages)
        with pytest.raises(InvalidInput, match="OR is not supported"):
            call(gm, "search", query="from:alice OR from:bob")


def test_a_non_ascii_query_is_sent_as_a_literal(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    call(connector(port), "search", query="subject:Grüße")
    (line,) = script.sent("UID SEARCH")
    assert line == b"UID SEARCH CHARSET UTF-8 X-GM-RAW {15}\r\nsubject:Gr\xc3\xbc\xc3\x9fe"
    assert script.searches == ["subject:Grüße"]


def test_a_query_cannot_smuggle_a_literal_or_a_new_line(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    call(connector(port), "search", query="x {5}")
    assert script.sent("UID SEARCH") == [b'UID SEARCH CHARSET UTF-8 X-GM-RAW "x {5}"']
    with pytest.raises(InvalidInput):
        call(connector(port), "search", query="x\r\nA1 UID STORE 1 +FLAGS (\\Deleted)")
    assert not script.sent("UID STORE")


def test_summaries_carry_labels_in_one_fetch(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    found = call(connector(port), "list_messages", limit=10).messages
    assert [m.id for m in found] == [
        f"{UIDVALIDITY}.103",
        f"{UIDVALIDITY}.102",
        f"{UIDVALIDITY}.101",
    ]
    labels = {m.subject: m.labels for m in found}
    assert labels["Team lunch"] == ["\\Important", "\\Inbox", "Friends"]
    assert labels["Your invoice"] == ["\\Inbox", "Finanzen/Rechnungen", "Ärger"]
    assert labels["Grüße"] == ["\\Inbox"]
    assert found[0].from_ == "Jörg <joerg@example.de>"
    (fetch,) = script.sent("UID FETCH")
    assert fetch.startswith(b"UID FETCH 103,102,101 (")
    assert b"X-GM-LABELS" in fetch
    assert b"BODY.PEEK[TEXT]<0." in fetch
    assert b"BODY[" not in fetch.replace(b"BODY.PEEK[", b"")


def test_get_message_has_labels_and_stays_unread(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    message = call(connector(port), "get_message", id=f"{UIDVALIDITY}.103")
    assert message.text.strip() == "Bis bald in München."
    assert message.labels == ["\\Inbox"]
    assert message.unread
    assert not script.sent("SELECT")
    assert script.sent("EXAMINE")


def test_gmail_folders_and_their_usual_names(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    gm = connector(port)
    names = [f.name for f in call(gm, "list_folders").folders]
    assert names[0] == "INBOX"
    assert "[Gmail]/All Mail" in names
    assert "[Gmail]" not in names
    assert script.sent("LIST") == [b'LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))']
    for alias, folder in [
        ("All Mail", "[Gmail]/All Mail"),
        ("trash", "[Gmail]/Trash"),
        ("Spam", "[Gmail]/Spam"),
        ("sent", "[Gmail]/Sent Mail"),
        ("Starred", "[Gmail]/Starred"),
        ("archive", "[Gmail]/All Mail"),
    ]:
        call(gm, "count_unread", folder=alias)
        assert script.sent("STATUS")[-1].startswith(f'STATUS "{folder}"'.encode()), alias


def test_check_reports_inbox_counts(gmail: tuple[int, Script]) -> None:
    port, _ = gmail
    result = run(connector(port).check())
    assert result.summary == "connected: 3 messages, 2 unread in INBOX"


@pytest.mark.parametrize(
    ("address", "password", "error", "says"),
    [
        (ADDRESS, "wrong", ConnectorAuthError, "refused the address or app password"),
        ("apppassword@gmail.com", "x", ConnectorAuthError, "wants an app password"),
        ("disabled@gmail.com", "x", ConnectorError, "IMAP access is turned off"),
        ("browser@gmail.com", "x", ConnectorAuthError, "until it is confirmed"),
    ],
)
def test_check_tells_login_problems_apart(
    gmail: tuple[int, Script], address: str, password: str, error: type[Exception], says: str
) -> None:
    port, _ = gmail
    with pytest.raises(error, match=says) as raised:
        run(connector(port, address, password).check())
    assert type(raised.value) is error
    hint = getattr(raised.value, "hint", "") or ""
    if "app password" in says or "refused" in says:
        assert APP_PASSWORDS in hint
    if "turned off" in says:
        assert "Enable IMAP" in hint
    assert password not in str(raised.value) + hint or password == "x"


def test_writes_use_their_own_read_write_connection(gmail: tuple[int, Script]) -> None:
    port, script = gmail
    gm = connector(port)
    call(gm, "list_messages")
    result = call(gm, "move", id=f"{UIDVALIDITY}.101", to_folder="Trash")
    assert result.detail == "moved from INBOX to Trash"
    assert script.sent("UID MOVE") == [b'UID MOVE 101 "[Gmail]/Trash"']
    assert script.sent("SELECT") == [b'SELECT "INBOX"']
    logins = [line for line in script.commands if b" LOGIN " in line]
    assert len(logins) == 2  # the read connection, and one for the write


class TestGmailContract(ConnectorContract):
    connector_class = GmailConnector
    read_params: ClassVar[dict[str, dict[str, Any]]] = {
        "list_folders": {},
        "list_messages": {"limit": 5},
        "search": {"query": "has:attachment"},
        "get_message": {"id": f"{UIDVALIDITY}.101"},
        "count_unread": {"folder": "INBOX"},
    }

    @pytest.fixture
    def connector_factory(self) -> Iterator[ConnectorFactory]:
        with gmail_responder() as (port, script):
            self.script = script

            async def make() -> GmailConnector:
                gm = connector(port)
                await gm.open()
                return gm

            yield make

    def snapshot(self) -> object:
        return [(m.uid, m.seen) for m in self.script.messages]


def test_a_refusal_quoting_the_password_back_does_not_pass_it_on(
    gmail: tuple[int, Script],
) -> None:
    """The agent reads connector errors; a server that quotes the LOGIN line back in its
    refusal must not hand the agent the app password."""
    port, _ = gmail
    secret = APP_PASSWORD.replace(" ", "")
    with pytest.raises(ConnectorAuthError) as raised:
        call(connector(port, address=ECHOING), "list_folders")
    said = f"{raised.value.message} {raised.value.hint}"
    assert "no such login" in said
    assert secret not in said
