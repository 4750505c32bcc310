"""The default policies: scope, read-only, rate-limit, redact-codes."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel

from airlock.default_plugins._policies import (
    RateLimitPolicy,
    ReadOnlyPolicy,
    RedactCodesPolicy,
    ScopePolicy,
    redact_text,
)
from airlock.framework.connectors import Access
from airlock.framework.plugins import get_plugin_manager, get_policies
from airlock.framework.policies import (
    UNTRUSTED,
    Decision,
    PolicyContext,
    SessionFacts,
    Stage,
    UntrustedText,
    evaluate,
)
from airlock.settings.config import ServicePermissions

READ_SESSION = SessionFacts(id="ses_1", services=("mail",), access=Access.READ, uid=1000)
WRITE_SESSION = SessionFacts(id="ses_2", services=("mail",), access=Access.WRITE, uid=1000)


def op(
    service: str = "mail",
    access: Access = Access.READ,
    session: SessionFacts | None = READ_SESSION,
    now: float = 0.0,
    write: Literal["ask", "deny"] = "ask",
    rate_limit: int = 60,
) -> PolicyContext:
    return PolicyContext(
        stage=Stage.OPERATION,
        service=service,
        access=access,
        operation="x",
        session=session,
        now=now,
        permissions=ServicePermissions(write=write),
        rate_limit=rate_limit,
    )


def test_the_defaults_are_registered_through_the_hooks() -> None:
    names = [p.name for p in get_policies(get_plugin_manager(load_entry_points=False, env={}))]
    assert names == ["scope", "read-only", "rate-limit", "redact-codes"]


def test_scope_refuses_a_service_outside_the_session() -> None:
    verdict = ScopePolicy().check(op(service="calendar"))
    assert verdict is not None
    assert verdict.decision is Decision.DENY
    assert "calendar" in verdict.reason


def test_scope_refuses_a_write_in_a_read_session_and_allows_reads() -> None:
    assert ScopePolicy().check(op(access=Access.WRITE)).decision is Decision.DENY  # type: ignore[union-attr]
    assert ScopePolicy().check(op()).decision is Decision.ALLOW  # type: ignore[union-attr]
    assert ScopePolicy().check(op(session=None)).decision is Decision.DENY  # type: ignore[union-attr]


def test_read_only_asks_for_each_write_and_can_be_configured_to_deny() -> None:
    policy = ReadOnlyPolicy()
    assert policy.check(op()) is None
    asked = policy.check(op(access=Access.WRITE, session=WRITE_SESSION))
    assert asked is not None
    assert asked.decision is Decision.ASK
    denied = policy.check(op(access=Access.WRITE, session=WRITE_SESSION, write="deny"))
    assert denied is not None
    assert denied.decision is Decision.DENY


def test_a_write_session_still_needs_the_per_operation_approval() -> None:
    verdict = evaluate(
        [ScopePolicy(), ReadOnlyPolicy()], op(access=Access.WRITE, session=WRITE_SESSION)
    )
    assert verdict.decision is Decision.ASK


def test_rate_limit_counts_per_session_in_a_sliding_minute() -> None:
    policy = RateLimitPolicy()
    for second in range(3):
        assert policy.check(op(now=float(second), rate_limit=3)) is None
    refused = policy.check(op(now=3.0, rate_limit=3))
    assert refused is not None
    assert refused.code == "rate_limited"
    other = SessionFacts(id="ses_other", services=("mail",), access=Access.READ, uid=1000)
    assert policy.check(op(session=other, now=3.0, rate_limit=3)) is None
    assert policy.check(op(now=60.5, rate_limit=3)) is None, "the first call left the window"


class Mail(BaseModel):
    subject: str
    text: str
    id: str


def test_one_time_codes_and_reset_links_are_masked() -> None:
    text = (
        "Your verification code is 482913.\n"
        "Use 731-044 to sign in.\n"
        "904512 is your Example code\n"
        "Reset: https://example.test/reset-password?token=abc\n"
        "Lunch at 12:30 on 2026-11-24, room 4012, invoice 20261124."
    )
    masked = redact_text(text)
    for secret in ("482913", "731-044", "904512", "reset-password"):
        assert secret not in masked
    for ordinary in ("12:30", "2026-11-24", "room 4012", "invoice 20261124"):
        assert ordinary in masked


def test_redaction_applies_to_text_fields_unless_the_session_is_sensitive() -> None:
    mail = Mail(subject="Your code 482913", text="code: 482913", id="1700000000.482913")
    filtered = RedactCodesPolicy().filter_result(op(), mail)
    assert isinstance(filtered, Mail)
    assert "482913" not in filtered.text
    assert "482913" not in filtered.subject
    assert filtered.id == mail.id, "ids are not text and stay usable"
    sensitive = SessionFacts(id="s", services=("mail",), access=Access.READ, uid=1, sensitive=True)
    assert RedactCodesPolicy().filter_result(op(session=sensitive), mail) == mail


def test_meeting_passwords_and_pins_are_masked() -> None:
    invitation = (
        "Join Zoom: https://zoom.us/j/81234567890?pwd=AbCdEf123xyz\n"
        "Meeting ID: 812 3456 7890  Passcode: 482913\n"
        "Teams passcode: aB3xYz\n"
        "Join by phone +1 555-010-0199 PIN: 123 456 789#\n"
        "Door PIN is 4711. The wifi password is hunter2!"
    )
    masked = redact_text(invitation)
    for secret in ("AbCdEf123xyz", "482913", "aB3xYz", "123 456 789", "4711", "hunter2"):
        assert secret not in masked
    for ordinary in ("https://zoom.us/j/81234567890?pwd=", "Meeting ID", "Join by phone +1"):
        assert ordinary in masked


class Person(BaseModel):
    name: UntrustedText = ""
    email: str = ""


class Invitation(BaseModel):
    id: str
    summary: UntrustedText
    location: UntrustedText = ""
    organizer: Person | None = None
    guests: list[Person] = []
    code_word: str = ""


def test_fields_a_connector_marks_untrusted_are_masked_at_any_depth() -> None:
    invitation = Invitation(
        id="evt-482913",
        summary="Standup, passcode: 482913",
        location="Room 4, door PIN: 7355",
        organizer=Person(name="Your code is 904512", email="a@example.test"),
        guests=[Person(name="verification code 731044")],
        code_word="passcode: 111222",
    )
    filtered = RedactCodesPolicy().filter_result(op(), invitation)
    assert isinstance(filtered, Invitation)
    text = filtered.model_dump_json()
    for secret in ("482913,", "7355", "904512", "731044"):
        assert secret not in text.replace("evt-482913", "")
    assert filtered.id == "evt-482913"
    assert filtered.code_word == "passcode: 111222", "unmarked fields are left alone"


class ToolOutput(BaseModel):
    tool: str
    structured: Annotated[dict[str, Any] | None, UNTRUSTED] = None


def test_every_string_inside_json_marked_untrusted_is_masked() -> None:
    output = ToolOutput(
        tool="read_mail 482913",
        structured={"items": [{"note": "your code is 904512"}], "pin": {"x": "PIN: 7355"}},
    )
    filtered = RedactCodesPolicy().filter_result(op(), output)
    assert isinstance(filtered, ToolOutput)
    text = filtered.model_dump_json()
    for secret in ("904512", "7355"):
        assert secret not in text
    assert filtered.tool == "read_mail 482913", "unmarked fields are left alone"


def test_the_gateways_context_is_the_one_the_class_makes_and_as_frozen() -> None:
    """``PolicyContext.of_call`` (the gateway's, quicker) gives what calling the class
    gives, names every field (one added later cannot be left out), and stays frozen."""
    fields = {
        "stage": Stage.OPERATION,
        "service": "mail",
        "access": Access.READ,
        "operation": "count_unread",
        "params": {"folder": "INBOX"},
        "session": None,
        "uid": 1000,
        "now": 12.5,
        "permissions": ServicePermissions(),
        "rate_limit": 7,
    }
    assert set(inspect.signature(PolicyContext.of_call).parameters) == {
        f.name for f in dataclasses.fields(PolicyContext)
    }
    made = PolicyContext.of_call(**fields)
    assert made == PolicyContext(**fields)
    assert dataclasses.replace(made, uid=1) == PolicyContext(**{**fields, "uid": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.uid = 0  # type: ignore[misc]
