"""The maildir connector on a real Maildir tree: every operation, as core calls it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.errors import ConnectorError, InvalidInput, NotFound
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.testing import run
from airlock_mail.maildir import MaildirConnector
from airlock_mail.model import FolderList, Message, MessageList
from tests.mail.conftest import FILLER, make_connector, tree_state
from tests.mail.corpus import NOW, CorpusMessage, by_label, write_maildir

Call = Callable[..., Any]


@pytest.fixture
def labels(corpus: list[CorpusMessage]) -> dict[str, CorpusMessage]:
    return by_label(corpus)


def inbox(corpus: list[CorpusMessage]) -> list[CorpusMessage]:
    return [m for m in corpus if m.folder == "INBOX"]


# ---------------------------------------------------------------------------- folders


def test_folders_are_listed_with_counts(call: Call, corpus: list[CorpusMessage]) -> None:
    result: FolderList = call("list_folders")
    counts = {f.name: (f.messages, f.unread) for f in result.folders}
    assert list(counts) == ["INBOX", "Archive", "Sent"]
    mail = inbox(corpus)
    assert counts["INBOX"] == (len(mail), sum(not m.seen for m in mail))
    assert counts["Archive"] == (1, 1)
    assert counts["Sent"] == (1, 0)


def test_check_says_how_much_mail_there_is(
    connector: MaildirConnector, corpus: list[CorpusMessage]
) -> None:
    result = run(connector.check())
    unread = sum(not m.seen for m in corpus)
    assert result.ok
    assert result.summary == f"{len(corpus)} messages, {unread} unread in 3 folders"


def test_nested_maildir_plus_plus_folders_and_junk_directories(maildir: Path, call: Call) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / ".Lists.Python" / sub).mkdir(parents=True)
    (maildir / ".NotAFolder").mkdir()  # no cur/new
    (maildir / "courierimapkeywords").mkdir()
    names = [f.name for f in call("list_folders").folders]
    assert names == ["INBOX", "Archive", "Lists.Python", "Sent"]


# ---------------------------------------------------------------------------- listing


def test_messages_are_listed_newest_first(call: Call, corpus: list[CorpusMessage]) -> None:
    result: MessageList = call("list_messages", limit=100)
    mail = inbox(corpus)
    assert len(result.messages) == len(mail)
    expected = sorted(mail, key=lambda m: m.date, reverse=True)
    assert [m.id for m in result.messages] == [m.key for m in expected]


def test_the_limit_caps_the_list(call: Call) -> None:
    assert len(call("list_messages").messages) == 20
    assert len(call("list_messages", limit=3).messages) == 3


def test_a_summary_has_every_field(call: Call, labels: dict[str, CorpusMessage]) -> None:
    top = call("list_messages", limit=1).messages[0]
    expected = labels["2fa-code"]
    assert top.id == expected.key
    assert top.folder == "INBOX"
    assert top.from_ == "Example Bank <no-reply@bank.example>"
    assert top.to == ["Me <me@example.test>"]
    assert top.subject == "Your sign-in code"
    assert top.date == expected.date
    assert top.unread
    assert not top.has_attachments
    assert top.size == len(expected.raw)
    assert top.snippet.startswith("Your verification code is")


def test_unread_only(call: Call, corpus: list[CorpusMessage]) -> None:
    found = call("list_messages", unread_only=True, limit=100).messages
    assert {m.id for m in found} == {m.key for m in inbox(corpus) if not m.seen}
    assert all(m.unread for m in found)


def test_since_keeps_messages_dated_on_or_after_that_day(
    call: Call, corpus: list[CorpusMessage]
) -> None:
    found = call("list_messages", since="2025-02-26", limit=100).messages
    # The malformed and header-less messages have no Date: their file time counts.
    expected = {m.key for m in inbox(corpus) if m.date.date() >= date(2025, 2, 26)}
    assert {m.id for m in found} == expected


def test_other_folders_and_inbox_in_any_case(call: Call, labels: dict[str, Any]) -> None:
    assert [m.id for m in call("list_messages", folder="Sent").messages] == [labels["sent"].key]
    assert call("list_messages", folder="inbox", limit=1).messages[0].folder == "INBOX"


def test_an_unknown_folder_is_not_found(call: Call) -> None:
    for operation in ("list_messages", "count_unread"):
        with pytest.raises(NotFound, match="no folder 'Nope'"):
            call(operation, folder="Nope")


def test_messages_without_a_date_sort_by_file_time(maildir: Path, call: Call) -> None:
    name = "1234567890.M1P1.undated"
    path = maildir / "cur" / f"{name}:2,S"
    path.write_bytes(b"Subject: undated\n\nno date header\n")
    stamp = NOW.timestamp() + 60  # newer than everything
    os.utime(path, (stamp, stamp))
    top = call("list_messages", limit=1).messages[0]
    assert (top.id, top.subject, top.date) == (name, "undated", None)


# ---------------------------------------------------------------------------- one message


def test_get_message_returns_text_headers_and_attachments(
    call: Call, labels: dict[str, CorpusMessage]
) -> None:
    message: Message = call("get_message", id=labels["attachment"].key)
    assert message.text == "Please find the invoice attached."
    assert [a.filename for a in message.attachments] == ["invoice.pdf", "Grüße.png"]
    assert message.headers["From"] == "Billing <billing@example.com>"
    assert message.unread


def test_get_message_in_another_folder(call: Call, labels: dict[str, CorpusMessage]) -> None:
    message = call("get_message", id=labels["archived"].key, folder="Archive")
    assert message.subject == "Old newsletter"
    assert message.folder == "Archive"
    with pytest.raises(NotFound):
        call("get_message", id=labels["archived"].key)  # not in INBOX


def test_get_message_cuts_long_text(call: Call, labels: dict[str, CorpusMessage]) -> None:
    message = call("get_message", id=labels["prompt-injection"].key, max_chars=10)
    assert message.text == "IGNORE ALL"
    assert message.text_truncated


@pytest.mark.parametrize("bad", ["../cur", "a/b", ".x", "x:2,S", "x y", "", "é"])
def test_get_message_refuses_ids_that_are_no_maildir_keys(call: Call, bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call("get_message", id=bad)
    assert caught.value.field == "id"


def test_get_message_of_an_unknown_key_is_not_found(call: Call) -> None:
    with pytest.raises(NotFound, match=r"no message '1\.M1P1\.nowhere' in folder 'INBOX'"):
        call("get_message", id="1.M1P1.nowhere")


# ---------------------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from:alice", ["plain"]),
        ("from:joerg", ["utf8-subject"]),
        ("from:françois", ["latin1"]),
        ("subject:münchen", ["utf8-subject"]),
        ('subject:"weekly digest"', ["html-only"]),
        ("to:dave", ["nested"]),
        ("to:erin", ["nested"]),  # Cc counts as to:, as in Gmail
        ("has:attachment subject:invoice", ["attachment"]),
        ('"verification code"', ["2fa-code"]),
        ("lunch", ["plain"]),
        ("is:unread newer_than:1d", ["2fa-code", "prompt-injection"]),
        ("newer_than:36h", ["2fa-code", "prompt-injection", "plain"]),
        ("after:2025-02-27 before:2025-03-01", ["plain", "utf8-subject"]),
        ("straße", ["unknown-charset"]),
        ("こんにちは", ["iso-2022-jp"]),
        ("nothing-matches-this", []),
    ],
)
def test_search_finds_what_the_query_says(
    call: Call, labels: dict[str, CorpusMessage], query: str, expected: list[str]
) -> None:
    found = call("search", query=query, limit=100).messages
    assert [m.id for m in found] == [labels[name].key for name in expected]


def test_search_body_text_and_limit(call: Call) -> None:
    assert len(call("search", query="budget", limit=100).messages) > 5
    assert len(call("search", query="budget", limit=5).messages) == 5


def test_search_counts_relative_terms_from_the_connectors_clock(maildir: Path) -> None:
    connector = make_connector(maildir)
    connector.clock.advance(10 * 86400)  # type: ignore[attr-defined]  # a FakeClock
    found = run(connector.call("search", {"query": "newer_than:1d"}))
    assert isinstance(found, MessageList)
    assert found.messages == []


def test_search_in_another_folder(call: Call, labels: dict[str, CorpusMessage]) -> None:
    found = call("search", query="is:unread", folder="Archive").messages
    assert [m.id for m in found] == [labels["archived"].key]


def test_search_refuses_unknown_operators(call: Call) -> None:
    with pytest.raises(InvalidInput, match="unknown search operator 'label:'"):
        call("search", query="label:work")


# ---------------------------------------------------------------------------- unread count


def test_count_unread(call: Call, corpus: list[CorpusMessage]) -> None:
    result = call("count_unread")
    assert (result.folder, result.unread) == ("INBOX", sum(not m.seen for m in inbox(corpus)))
    assert call("count_unread", folder="Sent").unread == 0


def _age_directories(maildir: Path, seconds: float) -> None:
    """Make cur/ and new/ look untouched for *seconds* (a count of them may be cached)."""
    for sub in ("cur", "new"):
        info = os.stat(maildir / sub)
        os.utime(maildir / sub, ns=(info.st_atime_ns, info.st_mtime_ns - int(seconds * 1e9)))


def test_count_unread_follows_changes_made_behind_the_connectors_back(
    maildir: Path, call: Call, corpus: list[CorpusMessage]
) -> None:
    unread = sum(not m.seen for m in inbox(corpus))
    _age_directories(maildir, 60)  # settled: the count is kept between calls
    assert call("count_unread").unread == unread
    assert call("count_unread").unread == unread
    # Another program (a mail client, a deliverer) changes the Maildir meanwhile.
    unseen = next(p for p in (maildir / "cur").iterdir() if not p.name.endswith("S"))
    unseen.rename(unseen.with_name(unseen.name + "S"))
    assert call("count_unread").unread == unread - 1
    (maildir / "new" / "1760000000.M1P1.test").write_bytes(b"Subject: new\n\nhi\n")
    assert call("count_unread").unread == unread
    # Changes within the same timestamp tick as a count are not missed either.
    for _ in range(3):
        fresh = maildir / "new" / "1760000000.M1P1.test"
        fresh.rename(maildir / "cur" / (fresh.name + ":2,S"))
        assert call("count_unread").unread == unread - 1
        (maildir / "cur" / (fresh.name + ":2,S")).rename(fresh)
        assert call("count_unread").unread == unread


def test_a_kept_count_never_outlives_its_folder(maildir: Path, call: Call, tmp_path: Path) -> None:
    archive = maildir / ".Archive"
    _age_directories(archive, 60)  # settled: the count is kept between calls
    assert call("count_unread", folder="Archive").unread == 1
    assert call("count_unread", folder="Archive").unread == 1
    # Swapped for a symlink to a Maildir with the same stamps: refused, not served.
    archive.rename(tmp_path / "Archive")
    (maildir / ".Archive").symlink_to(tmp_path / "Archive")
    with pytest.raises(NotFound, match="no folder 'Archive'"):
        call("count_unread", folder="Archive")
    (maildir / ".Archive").unlink()
    with pytest.raises(NotFound, match="no folder 'Archive'"):
        call("count_unread", folder="Archive")


# ---------------------------------------------------------------------------- read-only


def test_reads_change_nothing_on_disk(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    before = tree_state(maildir)
    fresh = labels["utf8-subject"]  # in new/: reading must not move it to cur/
    assert (maildir / "new" / fresh.key).exists()
    call("list_folders")
    call("list_messages", limit=100)
    call("list_messages", unread_only=True, since="2020-01-01")
    call("search", query='is:unread "grüße" newer_than:1y')
    for message in labels.values():
        folder = message.folder
        result = call("get_message", id=message.key, folder=folder, max_chars=200_000)
        assert result.unread is not message.seen
    call("count_unread")
    run(make_connector(maildir).check())
    assert tree_state(maildir) == before


# ---------------------------------------------------------------------------- writes


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(paths that disappeared, paths that appeared); contents are checked by callers."""
    return set(before) - set(after), set(after) - set(before)


def test_mark_read_renames_exactly_one_file(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    target = labels["2fa-code"]  # in cur/ without flags
    before = tree_state(maildir)
    result = call("mark_read", id=target.key)
    after = tree_state(maildir)
    assert (result.ok, result.detail) == (True, "marked read")
    gone, added = changes(before, after)
    assert gone == {f"cur/{target.key}:2,"}
    assert added == {f"cur/{target.key}:2,S"}
    assert after[f"cur/{target.key}:2,S"] == before[f"cur/{target.key}:2,"]  # same bytes
    assert call("get_message", id=target.key).unread is False


def test_mark_read_moves_a_new_message_to_cur(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    target = labels["utf8-subject"]
    call("mark_read", id=target.key)
    assert not (maildir / "new" / target.key).exists()
    assert (maildir / "cur" / f"{target.key}:2,S").read_bytes() == target.raw


def test_marking_twice_changes_nothing_the_second_time(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    key = labels["plain"].key  # already read
    before = tree_state(maildir)
    assert call("mark_read", id=key).detail == "already read"
    assert call("mark_unread", id=labels["utf8-subject"].key).detail == "already unread"
    assert tree_state(maildir) == before


def test_mark_unread_keeps_other_flags_in_order(maildir: Path, call: Call) -> None:
    path = maildir / "cur" / "1700000000.M9P9.flags:2,FRS"
    path.write_bytes(b"Subject: flagged\n\nx\n")
    assert call("mark_unread", id="1700000000.M9P9.flags").detail == "marked unread"
    assert (maildir / "cur" / "1700000000.M9P9.flags:2,FR").exists()
    assert not path.exists()
    call("mark_read", id="1700000000.M9P9.flags")
    assert (maildir / "cur" / "1700000000.M9P9.flags:2,FRS").exists()


def test_move_moves_exactly_one_file(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    target = labels["plain"]
    before = tree_state(maildir)
    result = call("move", id=target.key, to_folder="Archive")
    assert result.detail == "moved from INBOX to Archive"
    after = tree_state(maildir)
    name = target.maildir_name
    assert changes(before, after) == ({f"cur/{name}"}, {f".Archive/cur/{name}"})
    assert after[f".Archive/cur/{name}"] == before[f"cur/{name}"]
    assert call("get_message", id=target.key, folder="Archive").subject == "Lunch on Friday?"


def test_move_of_a_new_message_stays_new(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    target = labels["utf8-subject"]
    call("move", id=target.key, to_folder="Sent")
    assert (maildir / ".Sent" / "new" / target.key).read_bytes() == target.raw


def test_move_refuses_unknown_folders_and_itself(
    maildir: Path, call: Call, labels: dict[str, CorpusMessage]
) -> None:
    key = labels["plain"].key
    before = tree_state(maildir)
    with pytest.raises(NotFound, match="no folder 'Nope'"):
        call("move", id=key, to_folder="Nope")
    with pytest.raises(InvalidInput, match="already in 'INBOX'"):
        call("move", id=key, to_folder="inbox")
    with pytest.raises(NotFound):
        call("move", id="1.M1P1.nowhere", to_folder="Archive")
    with pytest.raises(NotFound):
        call("move", id=key, to_folder="../../tmp")  # only listed folders exist
    assert tree_state(maildir) == before


def test_move_never_overwrites(maildir: Path, call: Call, labels: dict[str, CorpusMessage]) -> None:
    target = labels["plain"]
    clash = maildir / ".Archive" / "cur" / target.maildir_name
    clash.write_bytes(b"Subject: other\n\nsame name\n")
    with pytest.raises(ConnectorError, match="already exists"):
        call("move", id=target.key, to_folder="Archive")
    assert clash.read_bytes() == b"Subject: other\n\nsame name\n"


# ---------------------------------------------------------------------------- the filesystem


def test_symlinks_inside_the_maildir_are_never_followed(
    maildir: Path, call: Call, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("Subject: vault key\n\nTOP SECRET\n")
    (maildir / "cur" / "1700000000.M1P1.link:2,S").symlink_to(secret)
    elsewhere = tmp_path / "elsewhere"
    write_maildir(elsewhere, [])
    (elsewhere / "cur" / "1700000000.M2P2.x:2,").write_text("Subject: TOP SECRET\n\nx")
    (maildir / ".Linked").symlink_to(elsewhere)
    assert "Linked" not in [f.name for f in call("list_folders").folders]
    assert "1700000000.M1P1.link" not in [m.id for m in call("list_messages", limit=100).messages]
    with pytest.raises(NotFound):
        call("get_message", id="1700000000.M1P1.link")
    with pytest.raises(NotFound):
        call("list_messages", folder="Linked")


def test_a_cur_directory_swapped_for_a_symlink_is_refused(maildir: Path, tmp_path: Path) -> None:
    (maildir / "cur").rename(tmp_path / "moved-cur")
    (maildir / "cur").symlink_to(tmp_path / "moved-cur")
    connector = make_connector(maildir)
    with pytest.raises(ConnectorError, match="symlinks inside a Maildir are not followed"):
        run(connector.call("list_messages", {}))
    archive = maildir / ".Archive"
    (archive / "new").rename(tmp_path / "moved-new")
    (archive / "new").symlink_to(tmp_path / "moved-new")
    with pytest.raises(NotFound, match="no folder 'Archive'"):
        run(connector.call("list_messages", {"folder": "Archive"}))


@pytest.mark.parametrize("folder", ["INBOX", "Archive"])
@pytest.mark.parametrize("subdir", ["cur", "new"])
def test_a_kept_count_is_not_served_once_cur_or_new_is_a_symlink(
    maildir: Path, call: Call, tmp_path: Path, folder: str, subdir: str
) -> None:
    """A count kept from before is not given for a folder whose ``cur/`` or ``new/`` was
    swapped for a symlink to the very same directory (same inode and times)."""
    base = maildir if folder == "INBOX" else maildir / ".Archive"
    _age_directories(base, 60)  # settled: the count is kept between calls
    call("count_unread", folder=folder)
    info = os.stat(base / subdir)
    (base / subdir).rename(tmp_path / "moved")
    os.utime(tmp_path / "moved", ns=(info.st_atime_ns, info.st_mtime_ns))
    (base / subdir).symlink_to(tmp_path / "moved")
    refused = ConnectorError if folder == "INBOX" else NotFound
    with pytest.raises(refused):
        call("count_unread", folder=folder)


def _symlink_with_inode(link: Path, target: Path, inode: int, tries: int = 2000) -> bool:
    """Plant *link* -> *target* as a symlink whose inode number is *inode*: create
    symlinks under other names beside it until one gets it, then rename it into place."""
    made = []
    try:
        for n in range(tries):
            candidate = link.parent / f"planted-{n}"
            candidate.symlink_to(target)
            if candidate.lstat().st_ino == inode:
                candidate.rename(link)
                return True
            made.append(candidate)
        return False
    finally:
        for path in made:
            path.unlink()


def test_a_kept_count_is_not_served_for_a_folder_now_a_symlink_given_its_inode(
    maildir: Path, call: Call, tmp_path: Path
) -> None:
    archive = maildir / ".Archive"
    _age_directories(archive, 60)
    assert call("count_unread", folder="Archive").unread == 1
    assert call("count_unread", folder="Archive").unread == 1  # kept
    old = archive.stat()
    stamps = {sub: os.stat(archive / sub) for sub in ("cur", "new")}
    # The folder's cur/ and new/ move elsewhere (same directories, times put back), the
    # folder's directory goes, and a symlink taking its inode number stands in its place.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for sub in ("cur", "new"):
        (archive / sub).rename(elsewhere / sub)
        info = stamps[sub]
        os.utime(elsewhere / sub, ns=(info.st_atime_ns, info.st_mtime_ns))
    for leftover in archive.iterdir():
        leftover.rmdir() if leftover.is_dir() else leftover.unlink()
    archive.rmdir()
    if not _symlink_with_inode(archive, elsewhere, old.st_ino):
        pytest.skip("this file system gave the freed inode number to no symlink")
    assert archive.is_symlink()
    with pytest.raises(NotFound):
        call("count_unread", folder="Archive")


def test_fifos_dotfiles_and_odd_names_are_not_messages(maildir: Path, call: Call) -> None:
    os.mkfifo(maildir / "cur" / "1700000000.M3P3.fifo:2,")
    (maildir / "cur" / ".hidden:2,").write_text("Subject: x\n\nx")
    (maildir / "new" / "my mail.eml").write_text("Subject: x\n\nx")
    (maildir / "cur" / "subdir").mkdir()
    listed = {m.id for m in call("list_messages", limit=100).messages}
    assert not {"1700000000.M3P3.fifo", ".hidden", "my mail.eml", "subdir"} & listed
    assert len(listed) == len([p for p in listed if p])


def test_settings_need_a_maildir(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a Maildir"):
        MaildirConnector.parse_settings({"path": str(tmp_path)}, service="archive")
    with pytest.raises(InvalidInput):
        MaildirConnector.parse_settings({"path": str(tmp_path), "extra": 1}, service="archive")


def test_settings_expand_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_maildir(tmp_path / "Mail", [])
    settings = MaildirConnector.parse_settings({"path": "~/Mail"}, service="archive")
    assert settings.model_dump()["path"] == tmp_path / "Mail"


def test_a_maildir_removed_after_configuration_is_a_clear_error(
    maildir: Path, tmp_path: Path
) -> None:
    connector = make_connector(maildir)
    maildir.rename(tmp_path / "gone")
    with pytest.raises(ConnectorError, match="is not a Maildir"):
        run(connector.open())


# ---------------------------------------------------------------------------- fuzzing


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=st.binary(max_size=3000), seen=st.booleans())
def test_any_bytes_as_a_mail_file_read_cleanly(tmp_path: Path, raw: bytes, seen: bool) -> None:
    root = write_maildir(tmp_path / "fuzz", [])
    path = root / "cur" / f"1800000000.M7P7.fuzz:2,{'S' if seen else ''}"
    path.write_bytes(raw)
    try:
        connector = make_connector(root)
        message = run(connector.call("get_message", {"id": "1800000000.M7P7.fuzz"}))
        assert isinstance(message, Message)
        assert message.unread is not seen
        message.model_dump_json()
        for operation, params in (
            ("list_messages", {}),
            ("search", {"query": "zzz-no-such-text has:attachment"}),
            ("search", {"query": "zzz-no-such-text"}),
        ):
            listed = run(connector.call(operation, params))
            assert isinstance(listed, MessageList)
            listed.model_dump_json()
    finally:
        path.unlink()


# ---------------------------------------------------------------------------- the plugin


def test_the_plugin_registers_the_mail_connectors() -> None:
    from airlock_mail.imap import ImapConnector

    connectors = get_connectors(get_plugin_manager(env={}))
    assert connectors["maildir"] is MaildirConnector
    assert connectors["imap"] is ImapConnector


def test_importing_the_plugin_module_loads_no_connector_code() -> None:
    code = (
        "import sys, airlock_mail.plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('airlock_mail') "
        "or m in ('email.parser', 'html.parser')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['airlock_mail', 'airlock_mail.plugin']"


def test_the_corpus_covers_every_case() -> None:
    from tests.mail.corpus import build_corpus

    assert len(build_corpus(FILLER)) == len(build_corpus()) + FILLER
    assert all(isinstance(m.date, datetime) for m in build_corpus())


def test_a_long_subject_cannot_hide_who_sent_the_message_a_write_acts_on(
    maildir: Path, connector: MaildirConnector
) -> None:
    """The prompt's "Acts on" line is cut to fit: a stranger's subject that says it is
    another message ("… from your boss, in INBOX") and runs past the cut must leave the
    sender, date and folder the message really has on the line, not push them off it."""
    from airlock.security.prompts import TARGET_LIMIT
    from airlock.security.targets import untrusted_line

    fake = "Payroll” from boss@corp.test, 2026-12-01, in INBOX " + "." * 300
    name = "1234567890.M1P1.spoof"
    (maildir / "cur" / f"{name}:2,").write_bytes(
        f"Subject: {fake}\nFrom: mallory@evil.test\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n\n"
        "hello\n".encode()
    )

    async def go() -> str | None:
        await connector.open()
        return await connector.describe(
            "move", connector.spec("move").parse_params({"id": name, "to_folder": "Archive"})
        )

    said = run(go())
    assert said is not None
    shown = untrusted_line(said, TARGET_LIMIT)
    assert "mallory@evil.test" in shown
    assert "in INBOX" in shown.split("Payroll")[0], "the real folder before the subject"
