"""The shared mail models: what agents may send, and the JSON they get back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from airlock_mail.model import (
    GetMessageParams,
    ListMessagesParams,
    Message,
    MessageSummary,
    MoveParams,
    SearchParams,
)


@pytest.mark.parametrize(
    "folder", ["", "   ", "a\r\nA001 DELETE INBOX", "x\x00y", "tab\there", "x" * 201]
)
def test_bad_folder_names_are_refused(folder: str) -> None:
    with pytest.raises(ValidationError):
        ListMessagesParams(folder=folder)


@pytest.mark.parametrize(
    "folder", ["INBOX", "Archive", "[Gmail]/Sent Mail", "Entwürfe", "Lists.Python", "x" * 200]
)
def test_real_folder_names_are_accepted(folder: str) -> None:
    assert ListMessagesParams(folder=folder).folder == folder


@pytest.mark.parametrize(
    "message_id", ["", "../etc/passwd", "a/b", ".hidden", "x y", 'q"', "a:2,S", "é", "x" * 201]
)
def test_bad_ids_are_refused(message_id: str) -> None:
    with pytest.raises(ValidationError):
        GetMessageParams(id=message_id)


@pytest.mark.parametrize("message_id", ["1740744000.M1P2.host,S=12,W=13", "4242.17", "a\\057b"])
def test_real_ids_are_accepted(message_id: str) -> None:
    assert GetMessageParams(id=message_id).id == message_id


def test_limits_and_sizes_are_bounded() -> None:
    for bad in (0, 101):
        with pytest.raises(ValidationError):
            ListMessagesParams(limit=bad)
    for bad in (0, 200_001):
        with pytest.raises(ValidationError):
            GetMessageParams(id="1", max_chars=bad)
    with pytest.raises(ValidationError):
        SearchParams(query="x" * 501)
    with pytest.raises(ValidationError):
        SearchParams(query="from:x\r\nA1 LOGOUT")


def test_unknown_params_are_refused() -> None:
    with pytest.raises(ValidationError):
        MoveParams.model_validate({"id": "1", "to_folder": "Archive", "destination": "x"})


def test_defaults_are_the_documented_ones() -> None:
    assert ListMessagesParams().model_dump() == {
        "folder": "INBOX",
        "limit": 20,
        "unread_only": False,
        "since": None,
    }
    assert GetMessageParams(id="1").max_chars == 20_000


def test_json_says_from_and_reads_back() -> None:
    summary = MessageSummary(
        id="1",
        folder="INBOX",
        from_="Alice <alice@example.test>",
        unread=True,
        date=datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
    )
    data = summary.model_dump(mode="json")
    assert data["from"] == "Alice <alice@example.test>"
    assert "from_" not in data
    assert data["labels"] == []
    assert MessageSummary.model_validate_json(summary.model_dump_json()) == summary
    assert "from" in MessageSummary.model_json_schema()["properties"]


def test_dates_must_carry_a_timezone() -> None:
    with pytest.raises(ValidationError):
        MessageSummary(id="1", folder="INBOX", unread=False, date=datetime(2025, 1, 1))


def test_a_message_is_a_summary_with_more() -> None:
    message = Message(id="1", folder="INBOX", unread=False, text="hi", text_truncated=False)
    assert isinstance(message, MessageSummary)
    assert message.model_dump(mode="json")["attachments"] == []
