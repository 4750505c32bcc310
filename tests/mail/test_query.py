"""The shared mail query syntax: parsing, errors, rendering, and local evaluation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.errors import InvalidInput
from airlock_mail.model import Message, MessageSummary
from airlock_mail.query import (
    OPERATORS,
    AgeTerm,
    AttachmentTerm,
    DateTerm,
    FieldTerm,
    Query,
    ReadTerm,
    Term,
    TextTerm,
    matches,
    parse_query,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def terms(text: str) -> tuple[Term, ...]:
    return parse_query(text).terms


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from:alice", FieldTerm("from", "alice")),
        ("to:bob@example.test", FieldTerm("to", "bob@example.test")),
        ("subject:invoice", FieldTerm("subject", "invoice")),
        ('subject:"quarterly report"', FieldTerm("subject", "quarterly report")),
        ('from:"Alice Smith"', FieldTerm("from", "Alice Smith")),
        ("FROM:alice", FieldTerm("from", "alice")),
        ("is:unread", ReadTerm(unread=True)),
        ("is:read", ReadTerm(unread=False)),
        ("IS:UNREAD", ReadTerm(unread=True)),
        ("has:attachment", AttachmentTerm()),
        ("newer_than:7d", AgeTerm("newer", 7, "d")),
        ("newer_than:12h", AgeTerm("newer", 12, "h")),
        ("older_than:2w", AgeTerm("older", 2, "w")),
        ("older_than:3M", AgeTerm("older", 3, "m")),
        ("newer_than:1y", AgeTerm("newer", 1, "y")),
        ("after:2025-01-31", DateTerm("after", date(2025, 1, 31))),
        ("after:2025/1/5", DateTerm("after", date(2025, 1, 5))),
        ("before:2025/02/28", DateTerm("before", date(2025, 2, 28))),
        ("lunch", TextTerm("lunch")),
        ('"exact phrase here"', TextTerm("exact phrase here")),
        ('"re: hello"', TextTerm("re: hello")),
        ("Grüße", TextTerm("Grüße")),
    ],
)
def test_each_operator_parses_to_its_term(text: str, expected: Term) -> None:
    assert terms(text) == (expected,)


def test_terms_combine_in_order() -> None:
    assert terms('from:alice is:unread "big news" budget') == (
        FieldTerm("from", "alice"),
        ReadTerm(unread=True),
        TextTerm("big news"),
        TextTerm("budget"),
    )


def test_blank_queries_and_the_word_and_add_no_terms() -> None:
    assert terms("   ") == ()
    assert terms('"" AND lunch') == (TextTerm("lunch"),)


def test_the_query_keeps_its_source_text_for_native_backends() -> None:
    assert parse_query("from:alice  is:unread").source == "from:alice  is:unread"


def test_only_free_text_needs_the_body() -> None:
    assert parse_query("lunch").needs_body
    assert not parse_query("from:alice is:unread subject:x").needs_body


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("foo:bar", "unknown search operator 'foo:'"),
        ("label:work", "supported: from:, to:, subject:"),
        ("http://example.com", 'put it in quotes: "http://example.com"'),
        ('subject:"unclosed', "unbalanced quote at position 9"),
        ('"abc', "unbalanced quote at position 1"),
        ("from:", "from: needs a value"),
        ('from:""', "from: needs a value"),
        ("is:starred", "is:starred is not supported"),
        ("has:drive", "has:drive is not supported"),
        ("newer_than:7", "not a valid age"),
        ("newer_than:7x", "not a valid age"),
        ("older_than:-1d", "not a valid age"),
        ("after:2025-02-30", "not a valid date"),
        ("before:yesterday", "not a valid date"),
        ("from:a OR from:b", "OR is not supported"),
        ("lunch\nfrom:x", "control characters"),
        ("x" * 501, "too long"),
    ],
)
def test_invalid_queries_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=None) as caught:
        parse_query(text)
    assert says in caught.value.message
    assert caught.value.field == "query"


def test_the_unknown_operator_error_lists_every_supported_operator() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_query("form:alice")
    for operator in OPERATORS:
        assert operator in caught.value.message


def test_quoted_operators_and_or_are_plain_text() -> None:
    assert terms('"foo:bar" "OR"') == (TextTerm("foo:bar"), TextTerm("OR"))


# ---------------------------------------------------------------------------- rendering


def test_str_is_canonical_and_parses_back() -> None:
    query = parse_query('FROM:"Alice Smith" is:UNREAD after:2025/1/5 "a b" subject:re:hi x')
    assert str(query) == ('from:"Alice Smith" is:unread after:2025-01-05 "a b" subject:"re:hi" x')
    assert parse_query(str(query)) == query


@given(st.text(max_size=120))
def test_the_parser_raises_nothing_but_invalid_input(text: str) -> None:
    try:
        query = parse_query(text)
    except InvalidInput:
        return
    assert parse_query(str(query)) == query


_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"'),
    min_size=1,
    max_size=20,
).filter(lambda v: v.strip())
_term_strategy: st.SearchStrategy[Term] = st.one_of(
    st.builds(FieldTerm, st.sampled_from(["from", "to", "subject"]), _values),
    st.builds(TextTerm, _values),
    st.builds(ReadTerm, st.booleans()),
    st.builds(AttachmentTerm),
    st.builds(DateTerm, st.sampled_from(["after", "before"]), st.dates()),
    st.builds(
        AgeTerm,
        st.sampled_from(["newer", "older"]),
        st.integers(0, 99999),
        st.sampled_from(["h", "d", "w", "m", "y"]),
    ),
)


@given(st.lists(_term_strategy, max_size=6))
def test_every_query_round_trips_through_its_text(term_list: list[Term]) -> None:
    query = Query(tuple(term_list))
    text = str(query)
    if len(text) <= 500:
        assert parse_query(text) == query


# ---------------------------------------------------------------------------- evaluation


def summary(**fields: object) -> MessageSummary:
    base: dict[str, object] = {
        "id": "1",
        "folder": "INBOX",
        "from_": "Alice Smith <alice@example.test>",
        "to": ["Me <me@example.test>"],
        "subject": "Quarterly Report",
        "date": NOW - timedelta(days=3),
        "unread": True,
        "has_attachments": False,
        "snippet": "numbers are up",
    }
    return MessageSummary.model_validate({**base, **fields})


def hit(text: str, message: MessageSummary | None = None) -> bool:
    return matches(parse_query(text), message or summary(), NOW)


def test_header_terms_match_case_insensitive_substrings() -> None:
    assert hit("from:alice")
    assert hit("from:ALICE@EXAMPLE")
    assert not hit("from:bob")
    assert hit("to:me@example")
    assert not hit("to:alice")
    assert hit('subject:"quarterly rep"')
    assert not hit("subject:invoice")


def test_to_also_matches_cc() -> None:
    assert hit("to:erin", summary(cc=["Erin <erin@x.test>"]))
    assert not hit("to:erin")


def test_free_text_searches_subject_addresses_and_text() -> None:
    assert hit("quarterly")
    assert hit("alice")
    assert hit('"numbers are"')
    assert not hit("budget")
    message = Message.model_validate({**summary().model_dump(), "text": "the budget grew"})
    assert hit("budget", message)


def test_flag_terms() -> None:
    assert hit("is:unread")
    assert not hit("is:read")
    assert hit("is:read", summary(unread=False))
    assert not hit("has:attachment")
    assert hit("has:attachment", summary(has_attachments=True))


def test_date_terms_use_utc_day_boundaries() -> None:
    on_day = summary(date=datetime(2025, 2, 26, 0, 0, tzinfo=UTC))
    assert hit("after:2025-02-26", on_day)
    assert not hit("before:2025-02-26", on_day)
    assert hit("before:2025-02-27", on_day)
    assert not hit("after:2025-02-27", on_day)


def test_relative_terms_count_back_from_the_given_now() -> None:
    assert hit("newer_than:4d")
    assert not hit("newer_than:2d")
    assert hit("older_than:2d")
    assert not hit("older_than:72h")
    assert hit("newer_than:99999y")  # clamped, not an OverflowError


def test_a_message_without_a_date_matches_no_date_term() -> None:
    undated = summary(date=None)
    for text in ("after:2000-01-01", "before:2100-01-01", "newer_than:1y", "older_than:1d"):
        assert not hit(text, undated)


def test_all_terms_must_match() -> None:
    assert hit("from:alice is:unread newer_than:7d")
    assert not hit("from:alice is:read")


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        matches(parse_query("x"), summary(), datetime(2025, 1, 1))
