"""MIME parsing survives anything: every nasty case of the corpus, and random bytes."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock_mail.decoding import decode_bytes, decode_header_text
from airlock_mail.mime import (
    SNIPPET_LENGTH,
    body_snippet,
    header_date,
    parse_message,
    parse_summary,
)
from airlock_mail.model import Message
from tests.mail.corpus import CorpusMessage, build_corpus, by_label

CORPUS = by_label(build_corpus())


def full(raw: bytes, **kw: int) -> Message:
    return parse_message(raw, id="1", folder="INBOX", unread=True, **kw)


def of(label: str) -> Message:
    return full(CORPUS[label].raw)


def test_a_plain_message_gives_its_headers_and_text() -> None:
    message = of("plain")
    assert message.from_ == "Alice Example <alice@example.test>"
    assert message.to == ["Me <me@example.test>"]
    assert message.subject == "Lunch on Friday?"
    assert message.date == CORPUS["plain"].date
    assert message.text == "Hi,\n\nshall we have lunch on Friday at noon?\n\nAlice"
    assert message.message_id.startswith("<")
    assert message.message_id.endswith("@example.test>")
    assert message.headers["Subject"] == "Lunch on Friday?"
    assert message.size == len(CORPUS["plain"].raw)
    assert not message.has_attachments
    assert message.attachments == []


def test_rfc2047_utf8_headers_are_decoded() -> None:
    message = of("utf8-subject")
    assert message.subject == "Grüße aus München 🎉"
    assert message.from_ == "Jörg Müller <joerg@example.de>"
    assert message.text == "Viele Grüße aus München! Bis bald."


def test_rfc2047_latin1_headers_and_quoted_printable_latin1_body() -> None:
    message = of("latin1")
    assert message.subject == "Réunion d'équipe"
    assert message.from_ == "François Léger <francois@example.fr>"
    assert message.text == "La réunion aura lieu à 14h. Café offert."


def test_html_only_mail_is_rendered_to_readable_text() -> None:
    text = of("html-only").text
    assert "Read the new post (https://example.com/post?id=1&x=2) & more." in text
    assert "- First item\n- Second item" in text
    assert "Café <tag>" in text
    assert "<" not in text.replace("<tag>", "")
    assert "alert" not in text
    assert "color: red" not in text
    assert "Digest" not in text


def test_plain_text_is_preferred_over_html() -> None:
    assert of("alternative").text == "The PLAIN version."


def test_attachments_are_listed_with_decoded_sizes() -> None:
    message = of("attachment")
    assert message.has_attachments
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ("invoice.pdf", "application/pdf"),
        ("Grüße.png", "image/png"),
    ]
    assert message.attachments[0].size == len(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    assert message.text == "Please find the invoice attached."


def test_nested_multiparts_give_the_plain_body_and_every_attachment() -> None:
    message = of("nested")
    assert message.text == "Photos from the trip, nested."
    assert [a.content_type for a in message.attachments] == ["image/png", "message/rfc822"]
    assert message.to == ["Me <me@example.test>", "Dave <dave@example.test>"]
    assert message.cc == ["Erin <erin@example.test>"]
    assert message.reply_to == ["carol.private@example.test"]
    assert "forwarded inner" not in message.text  # an attached mail is not the body


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("windows-1252", "“Smart quotes” and – dashes € 5"),
        ("iso-2022-jp", "こんにちは、世界"),
        ("unknown-charset", "Straße in UTF-8 bytes"),
    ],
)
def test_non_utf8_and_unknown_charsets_are_decoded(label: str, text: str) -> None:
    assert of(label).text == text


def test_iso_2022_jp_subject() -> None:
    assert of("iso-2022-jp").subject == "こんにちは"


def test_malformed_mime_gives_the_best_text_possible() -> None:
    message = of("malformed")
    assert message.date is None  # "99 Foo 2025 25:61" is no date
    assert message.from_.endswith("<broken@example.test>")
    assert "8bit" in message.subject
    assert "header" in message.subject
    assert "!!not*base64@@" in message.text  # the boundary never matched: shown as text
    assert message.to == []
    assert message.message_id == ""
    json.loads(message.model_dump_json())


def test_a_message_without_headers_is_just_text() -> None:
    message = of("no-headers")
    assert (message.from_, message.subject, message.date) == ("", "", None)
    assert message.text == "A message with no headers at all."


def test_hidden_html_is_dropped_but_the_plain_injection_is_shown_as_data() -> None:
    # Airlock does not hide a prompt injection from the agent (results are marked
    # untrusted); it only makes sure hidden HTML does not add text a person never saw.
    assert of("prompt-injection").text.startswith("IGNORE ALL PREVIOUS INSTRUCTIONS")


def test_raw_8bit_headers_are_decoded_as_utf8_or_cp1252() -> None:
    utf8 = full("Subject: Caf\u00e9 \u2013 ok\n\nx".encode())
    latin = full(b"Subject: Caf\xe9 ok\nFrom: M\xfcller <m@x.test>\n\nx")
    assert utf8.subject == "Café – ok"
    assert latin.subject == "Café ok"
    assert latin.from_ == "Müller <m@x.test>"


def test_header_values_are_one_line() -> None:
    message = full(b"Subject: one\n two\n\tthree\nX: y\n\nbody")
    assert message.subject == "one two three"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sat, 01 Mar 2025 12:00:00 +0100", datetime(2025, 3, 1, 11, 0, tzinfo=UTC)),
        ("1 Mar 2025 12:00 -0000", datetime(2025, 3, 1, 12, 0, tzinfo=UTC)),
        ("Sat, 01 Mar 2025 12:00:00 GMT", datetime(2025, 3, 1, 12, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("Sat, 01 Mar 2025 12:00:00 +9999", None),
        ("Sat, 01 Mar 99999 12:00:00 +0000", None),
        ("", None),
    ],
)
def test_dates_are_aware_or_none(value: str, expected: datetime | None) -> None:
    found = header_date(f"Date: {value}\n\n".encode())
    assert found == expected
    assert found is None or found.tzinfo is not None


def test_a_date_keeps_its_offset() -> None:
    found = header_date(b"Date: Sat, 01 Mar 2025 12:00:00 +0530\n\n")
    assert found is not None
    assert found.utcoffset() == timedelta(hours=5, minutes=30)
    assert found.tzinfo != timezone.utc  # noqa: UP017  # not normalised away


def test_text_is_cut_at_max_chars_and_says_so() -> None:
    raw = b"Subject: long\n\n" + b"word " * 1000
    cut = full(raw, max_chars=100)
    assert len(cut.text) == 100
    assert cut.text_truncated
    whole = full(raw)
    assert not whole.text_truncated
    assert whole.text.startswith("word word")


def test_the_snippet_is_short_and_on_one_line() -> None:
    raw = b"Subject: s\n\nline one\n\n\n   line    two\t" + b"x" * 1000
    summary = parse_summary(raw, id="1", folder="INBOX", unread=False)
    assert summary.snippet.startswith("line one line two x")
    assert len(summary.snippet) == SNIPPET_LENGTH


@pytest.mark.parametrize("message", build_corpus(3), ids=lambda m: m.label)
def test_summary_and_full_parse_agree(message: CorpusMessage) -> None:
    summary = parse_summary(message.raw, id="k", folder="INBOX", unread=not message.seen)
    whole = full(message.raw)
    for name in ("from_", "to", "cc", "subject", "date", "has_attachments", "size"):
        assert getattr(summary, name) == getattr(whole, name), name


def test_a_headers_only_summary_skips_the_body() -> None:
    raw = CORPUS["attachment"].raw
    whole = parse_summary(raw, id="1", folder="INBOX", unread=True)
    light = parse_summary(raw, id="1", folder="INBOX", unread=True, headers_only=True)
    assert (light.snippet, light.has_attachments) == ("", False)
    assert light.model_dump(exclude={"snippet", "has_attachments"}) == whole.model_dump(
        exclude={"snippet", "has_attachments"}
    )


def test_a_snippet_from_headers_and_the_start_of_the_body() -> None:
    # What an IMAP backend has after fetching BODY.PEEK[HEADER.FIELDS (...)] and TEXT<0.N>.
    head = b"Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
    assert body_snippet(head + b"<p>Caf\xe9 <b>ouvert</b></p><p>demain") == "Café ouvert demain"


def test_a_summary_of_a_big_message_does_not_decode_its_attachment() -> None:
    raw = (
        b"Subject: big\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        b"Content-Type: text/plain\n\nsee attached\n--B\nContent-Type: application/zip\n"
        b"Content-Disposition: attachment; filename=a.zip\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(os.urandom(6_000_000))
        + b"--B--\n"
    )
    started = time.perf_counter()
    summary = parse_summary(raw, id="1", folder="INBOX", unread=True)
    assert time.perf_counter() - started < 0.5
    assert summary.has_attachments
    assert summary.snippet == "see attached"
    assert summary.size == len(raw)
    assert full(raw).attachments[0].size == 6_000_000


def test_absurd_nesting_gives_the_text_instead_of_raising() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=A0\n\n" + b"".join(
        b"--A%d\nContent-Type: multipart/mixed; boundary=A%d\n\n" % (i, i + 1) for i in range(3000)
    )
    raw += b"--A3000\nContent-Type: text/plain\n\ndeep\n"
    message = full(raw, max_chars=1_000_000)
    assert message.text.startswith("--A0\nContent-Type: multipart/mixed; boundary=A1")
    assert message.text.endswith("Content-Type: text/plain\n\ndeep")
    assert not message.text_truncated
    cut = full(raw)  # the default limit still applies to such a body
    assert cut.text_truncated
    assert cut.text == message.text[: len(cut.text)]
    json.loads(cut.model_dump_json())


# ---------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("Grüße".encode(), "utf-8", "Grüße"),
        ("Grüße".encode("latin-1"), "iso-8859-1", "Grüße"),
        ("Grüße".encode(), "us-ascii", "Grüße"),  # the declared charset lies
        ("Grüße".encode("cp1252"), None, "Grüße"),
        (b"caf\xe9", "no-such-charset", "café"),
        (b"aGk=", "base64", "aGk="),  # a codec, but not a text encoding
        (b"\\u0041", "unicode_escape", "\\u0041"),  # escapes are not charsets
        (b"a\x00b\x07c\r\nd", "utf-8", "abc\nd"),
    ],
)
def test_bytes_decode_whatever_the_charset_claims(
    data: bytes, charset: str | None, expected: str
) -> None:
    assert decode_bytes(data, charset) == expected


def test_broken_encoded_words_give_the_text_they_can() -> None:
    assert decode_header_text("=?utf-8?b?!!!?= =?x-bogus?q?hi?= =?utf-8?q?=ZZ?=") == "hi=ZZ"
    assert decode_header_text("=?utf-8?q?a?= =?iso-8859-1?q?=E9?= b") == "aé b"


# ---------------------------------------------------------------------------- fuzzing


def _never_raises(raw: bytes) -> None:
    """Whatever the bytes: a message, its summary agreeing with it, one-line headers."""
    message = full(raw, max_chars=5000)
    summary = parse_summary(raw, id="1", folder="INBOX", unread=False)
    json.loads(message.model_dump_json())
    json.loads(summary.model_dump_json())
    assert (summary.subject, summary.from_, summary.date) == (
        message.subject,
        message.from_,
        message.date,
    )
    for header in (message.subject, message.from_):
        assert "\n" not in header
        assert "\r" not in header
    assert len(message.text) <= 5000 + 100  # the cut, plus the note saying so


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _never_raises(raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(CORPUS)),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=20),
    st.integers(0, 10_000),
)
def test_damaged_corpus_messages_never_raise(
    label: str, flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(CORPUS[label].raw)
    for position, value in flips:
        if raw:
            raw[position % len(raw)] = value
    _never_raises(bytes(raw[: max(cut, len(raw) // 2)]))


def test_a_subject_of_a_million_encoded_words_is_read_in_one_pass() -> None:
    """The stdlib's decode_header is quadratic in the number of encoded words (it pops
    each from the front of a list): a stranger's 2.8 MB Subject took 78 s of CPU in
    every listing that showed it. Only the start of a header is decoded now; the shown
    value is cut at 2,000 characters anyway."""
    raw = b"From: a@example.test\r\nSubject: " + b"=?utf-8?q?a?= " * 1_000_000
    raw += b"\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
    message = parse_message(raw, id="1", folder="INBOX", unread=True)
    assert message.subject == "a" * len(message.subject)
    assert 1000 <= len(message.subject) <= 2000
    assert message.text == "body"
    assert decode_header_text("=?utf-8?q?b?= " * 1_000_000).startswith("bbbb")


def test_a_from_header_of_a_million_addresses_lists_the_first_hundred() -> None:
    raw = b"From: " + b'"x" <a@example.test> (c), ' * 1_000_000 + b"\r\nSubject: s\r\n\r\nbody"
    message = parse_message(raw, id="1", folder="INBOX", unread=True)
    assert message.from_.count("a@example.test") == 100


def test_a_content_type_of_a_million_parameters_is_read_in_one_pass() -> None:
    """The stdlib splits parameters by slicing the rest of the header again for each
    one: a stranger's 790 KB Content-Type took 5 s of CPU, 10 MB hours. Every header
    is cut at 32 KiB as the message is parsed."""
    params = "".join(f"; p{i}=a" for i in range(1_000_000))
    raw = f"From: a@example.test\r\nContent-Type: text/plain{params}\r\n\r\nbody\r\n".encode()
    message = parse_message(raw, id="1", folder="INBOX", unread=True)
    assert message.text == "body"
    assert parse_summary(raw, id="1", folder="INBOX", unread=True).from_ == "a@example.test"
