"""Every read operation of the imap connector against a real Dovecot, plain and TLS."""

from __future__ import annotations

from datetime import date

import pytest

from airlock.errors import InvalidInput, NotFound
from airlock.testing import run
from airlock_mail.model import FolderList, Message, MessageList, UnreadCount
from tests.mail.corpus import build_corpus, by_label
from tests.mail.dovecot import DovecotServer, MailUser
from tests.mail.imap.conftest import ConnectorMaker, call
from tests.mail.mailbox import dovecot_mailbox

pytestmark = pytest.mark.dovecot

CORPUS = by_label(build_corpus())
MAILBOX = dovecot_mailbox()
INBOX = [m for m in MAILBOX if m.folder == "INBOX"]


@pytest.fixture(params=["none", "tls", "starttls"])
def security(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_check_logs_in_and_counts_the_inbox(imap: ConnectorMaker, security: str) -> None:
    result = run(imap(security=security).check())
    unread = sum(not m.seen for m in INBOX)
    assert result.ok
    assert result.summary == f"connected: {len(INBOX)} messages, {unread} unread in INBOX"


def test_list_folders_gives_counts_for_every_folder(imap: ConnectorMaker, security: str) -> None:
    found = call(imap(security=security), "list_folders")
    assert isinstance(found, FolderList)
    counts = {f.name: (f.messages, f.unread) for f in found.folders}
    assert found.folders[0].name == "INBOX"
    for name in {m.folder for m in MAILBOX}:
        mine = [m for m in MAILBOX if m.folder == name]
        assert counts[name] == (len(mine), sum(not m.seen for m in mine)), name
    assert counts["Empty"] == (0, 0)
    assert "Work" not in counts  # \Noselect: it only holds Work/Projects


def test_list_messages_is_newest_first_with_full_summaries(
    imap: ConnectorMaker, security: str
) -> None:
    found = call(imap(security=security), "list_messages", limit=50)
    assert isinstance(found, MessageList)
    assert len(found.messages) == 50
    uids = [int(m.id.split(".")[1]) for m in found.messages]
    assert uids == sorted(uids, reverse=True)
    dates = [m.date for m in found.messages if m.date is not None]
    assert dates == sorted(dates, reverse=True)
    top = found.messages[0]
    expected = CORPUS["2fa-code"]
    assert top.subject == "Your sign-in code"
    assert top.from_ == "Example Bank <no-reply@bank.example>"
    assert top.to == ["Me <me@example.test>"]
    assert top.date == expected.date
    assert top.unread
    assert not top.has_attachments
    assert top.size == len(expected.raw.replace(b"\n", b"\r\n"))  # RFC822.SIZE counts CRLF
    assert top.snippet.startswith("Your verification code is 482913")
    assert top.folder == "INBOX"
    uidvalidity, uid = top.id.split(".")
    assert int(uidvalidity) > 0
    assert int(uid) == len(INBOX)


def test_summaries_decode_non_ascii_html_and_attachments(imap: ConnectorMaker) -> None:
    found = call(imap(), "list_messages", limit=20).messages
    by_subject = {m.subject: m for m in found}
    umlauts = by_subject["Grüße aus München 🎉"]
    assert umlauts.from_ == "Jörg Müller <joerg@example.de>"
    assert umlauts.snippet == "Viele Grüße aus München! Bis bald."
    latin1 = by_subject["Réunion d'équipe"]
    assert latin1.from_ == "François Léger <francois@example.fr>"
    assert latin1.snippet == "La réunion aura lieu à 14h. Café offert."
    html = by_subject["Your weekly digest"]
    assert html.snippet.startswith("This week")
    assert "<h1>" not in html.snippet
    assert "alert" not in html.snippet  # the script is not text
    assert by_subject["Invoice 2025-02"].has_attachments
    assert by_subject["Trip photos"].has_attachments  # inline image and attached message
    assert by_subject["Plain and fancy"].snippet == "The PLAIN version."
    assert not by_subject["Plain and fancy"].has_attachments


def test_broken_mime_still_lists(imap: ConnectorMaker) -> None:
    found = call(imap(), "list_messages", limit=20).messages
    broken = next(m for m in found if m.from_.endswith("<broken@example.test>"))
    assert "Caf" in broken.subject
    assert broken.date is None
    nameless = [m for m in found if not m.subject and not m.from_]
    assert nameless  # the message with no headers at all


def test_list_messages_limit_unread_and_since(imap: ConnectorMaker) -> None:
    connector = imap()
    assert len(call(connector, "list_messages", limit=7).messages) == 7
    unread = call(connector, "list_messages", limit=100, unread_only=True).messages
    assert unread
    assert all(m.unread for m in unread)
    recent = call(connector, "list_messages", limit=100, since=date(2025, 2, 25)).messages
    expected = [m for m in INBOX if m.received.date() >= date(2025, 2, 25)]
    assert len(recent) == len(expected)


def test_list_messages_in_other_folders(imap: ConnectorMaker) -> None:
    connector = imap()
    assert call(connector, "list_messages", folder="Empty").messages == []
    archived = call(connector, "list_messages", folder="Archive").messages
    assert [m.subject for m in archived] == ["Old newsletter"]
    assert len(call(connector, "list_messages", folder="Entwürfe").messages) == 2
    assert len(call(connector, "list_messages", folder="Work/Projects").messages) == 5
    inbox = call(connector, "list_messages", folder="inbox", limit=1).messages
    assert inbox[0].folder == "INBOX"


def test_special_use_aliases_find_provider_folders(imap: ConnectorMaker) -> None:
    connector = imap()
    trash = call(connector, "list_messages", folder="Trash").messages
    assert {m.folder for m in trash} == {"Deleted Messages"}
    junk = [m for m in MAILBOX if m.folder == "Junk"]
    assert call(connector, "count_unread", folder="spam").unread == sum(not m.seen for m in junk)


def test_get_message_reads_text_headers_and_attachments(
    imap: ConnectorMaker, security: str
) -> None:
    connector = imap(security=security)
    listed = call(connector, "search", query='subject:"Invoice 2025-02"').messages
    message = call(connector, "get_message", id=listed[0].id)
    assert isinstance(message, Message)
    assert message.text.strip() == "Please find the invoice attached."
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ("invoice.pdf", "application/pdf"),
        ("Grüße.png", "image/png"),
    ]
    assert message.headers["Subject"] == "Invoice 2025-02"
    assert message.unread
    assert message.id == listed[0].id


def test_get_message_renders_html_only_mail(imap: ConnectorMaker) -> None:
    connector = imap()
    found = call(connector, "search", query='subject:"weekly digest" from:news@example.com')
    message = call(connector, "get_message", id=found.messages[0].id, max_chars=40)
    assert message.text.startswith("This week")
    assert message.text_truncated
    assert len(message.text) == 40


def test_get_message_of_a_missing_uid_is_not_found(imap: ConnectorMaker) -> None:
    connector = imap()
    uidvalidity = call(connector, "list_messages", limit=1).messages[0].id.split(".")[0]
    with pytest.raises(NotFound, match="no message"):
        call(connector, "get_message", id=f"{uidvalidity}.99999")


def test_a_stale_uidvalidity_is_refused(imap: ConnectorMaker) -> None:
    connector = imap()
    uidvalidity, uid = call(connector, "list_messages", limit=1).messages[0].id.split(".")
    with pytest.raises(NotFound, match="stale"):
        call(connector, "get_message", id=f"{int(uidvalidity) - 1}.{uid}")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('from:"Alice Example"', {"Lunch on Friday?"}),
        ('subject:"Grüße aus München 🎉"', {"Grüße aus München 🎉"}),
        ("München from:joerg", {"Grüße aus München 🎉"}),
        ("to:dave", {"Trip photos"}),
        ("to:erin", {"Trip photos"}),  # to: also searches Cc
        ('"admin mode" is:unread', {"Urgent: account review"}),
        ("has:attachment after:2025-02-20", {"Invoice 2025-02", "Trip photos"}),
        (
            "is:read after:2025-02-24 before:2025-03-01",
            {"Your weekly digest", "Lunch on Friday?", "Plain and fancy"},
        ),
        ("newer_than:1d is:unread", {"Your sign-in code", "Urgent: account review"}),
    ],
)
def test_search_translates_the_shared_syntax(
    imap: ConnectorMaker, query: str, expected: set[str]
) -> None:
    found = call(imap(), "search", query=query, limit=100).messages
    assert {m.subject for m in found} == expected


def test_search_is_limited_and_newest_first(imap: ConnectorMaker) -> None:
    found = call(imap(), "search", query="older_than:30d", limit=5).messages
    assert len(found) == 5
    dates = [m.date for m in found if m.date is not None]
    assert dates == sorted(dates, reverse=True)


def test_search_in_another_folder(imap: ConnectorMaker) -> None:
    found = call(imap(), "search", query="Friday", folder="Sent").messages
    assert [m.subject for m in found] == ["Re: Lunch on Friday?"]


def test_count_unread_by_status(imap: ConnectorMaker) -> None:
    connector = imap()
    counted = call(connector, "count_unread")
    assert isinstance(counted, UnreadCount)
    assert counted.unread == sum(not m.seen for m in INBOX)
    assert call(connector, "count_unread", folder="Archive").unread == 1
    assert call(connector, "count_unread", folder="Empty").unread == 0


def test_unknown_and_container_folders_are_clear_errors(imap: ConnectorMaker) -> None:
    connector = imap()
    with pytest.raises(NotFound, match="no folder 'Nope'") as raised:
        call(connector, "count_unread", folder="Nope")
    assert "Archive" in (raised.value.hint or "")
    with pytest.raises(InvalidInput, match="only holds other folders"):
        call(connector, "list_messages", folder="Work")


def test_one_connection_serves_every_read(
    imap: ConnectorMaker, dovecot: DovecotServer, mail_account: MailUser
) -> None:
    connector = imap()
    call(connector, "list_folders")
    first = connector._session
    for _ in range(3):
        call(connector, "list_messages", limit=5)
        call(connector, "count_unread")
    assert connector._session is first
