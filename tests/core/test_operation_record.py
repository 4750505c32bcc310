"""A successful call's ``operation`` record, written by hand in sorted order
(``gateway.operation_record``), is the record ``fields_json`` writes of the same fields:
byte for byte, secrets scrubbed alike, whatever an agent puts in its parameters."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.gateway.operation_record import WHERE_FIELDS, ok_fields
from airlock.security._audit_fields import MAX_DEPTH, MAX_STRING, fields_json
from airlock.security.audit import AuditLog, verify

KEY = b"k" * 32
TOKEN = "alk_" + "s" * 43

hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            TOKEN,
            f"see {TOKEN} here",
            "Bearer abcdefghijklmnop",
            "basic dXNlcjpwYXNzd29yZA==",
            'quote " back\\slash \n\t\x00\x1b[31m',
            "\ud800 half a pair",
            "💌 mail",
            "x" * 65,
            "y" * (MAX_STRING + 7),
        ]
    ),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
secret_names = st.sampled_from(["password", "api_key", "token", "x_airlock_totp", "Cookie"])
leaves = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
json_like = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(hostile_text, secret_names), inner, max_size=4),
    ),
    max_leaves=25,
)


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"in": value}
    return value


where_values = st.fixed_dictionaries(
    {
        "uid": st.integers(min_value=0, max_value=2**32),
        "pid": st.one_of(st.none(), st.integers(min_value=1, max_value=2**22)),
        "session": hostile_text,
        "service": hostile_text,
        "op": hostile_text,
    }
)


def as_dict(where: dict[str, Any], params: Any, **rest: Any) -> dict[str, Any]:
    facts = rest.pop("facts")
    return {**where, "params": params, "outcome": "ok", **rest, **facts}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=where_values,
    params=st.one_of(
        st.dictionaries(st.one_of(hostile_text, secret_names), json_like, max_size=6),
        st.sampled_from([deep(MAX_DEPTH - 1), deep(MAX_DEPTH), deep(MAX_DEPTH + 3)]),
    ),
    count=st.integers(min_value=0, max_value=2**64),
    items=st.one_of(st.none(), st.integers(min_value=0)),
    duration_ms=st.floats(allow_nan=True, allow_infinity=True),
    approval=st.one_of(st.none(), hostile_text),
    facts=st.one_of(st.just({}), st.dictionaries(st.sampled_from(["cost_usd", "tokens"]), leaves)),
)
def test_the_written_fields_are_what_fields_json_writes(
    where: dict[str, Any],
    params: Any,
    count: int,
    items: int | None,
    duration_ms: float,
    approval: str | None,
    facts: dict[str, Any],
) -> None:
    rest: dict[str, Any] = dict(
        count=count, items=items, duration_ms=duration_ms, approval=approval, facts=facts
    )
    assert ok_fields(where, params, **rest) == fields_json(as_dict(where, params, **rest))


def test_a_caller_with_other_fields_keeps_them() -> None:
    """A ``where`` with a field the hand-written order does not know (a peer's new
    field, say) is not cut short: it takes ``fields_json``'s way."""
    where = {"uid": 1, "pid": 2, "session": "s", "service": "mail", "op": "count", "exe": "x"}
    assert where.keys() != WHERE_FIELDS
    rest: dict[str, Any] = dict(count=1, items=None, duration_ms=0.5, approval=None, facts={})
    written = ok_fields(where, {}, **rest)
    assert '"exe":"x"' in written
    assert written == fields_json(as_dict(where, {}, **rest))


def test_a_record_written_this_way_verifies_and_hides_its_secrets(tmp_path: Path) -> None:
    """Through a real log (its writer process and, as the CLI writes, its own thread):
    the chain verifies and the secrets an agent put in its parameters are not on disk."""
    audit_dir = tmp_path / "audit"
    where = {"uid": 1000, "pid": 4242, "session": "3f2a9c0e", "service": "mail", "op": "send"}
    params = {"to": "a@example.org", "password": "hunter2-hunter2", "note": f"key {TOKEN}"}
    rest: dict[str, Any] = dict(count=3, items=2, duration_ms=math.inf, approval="req-1", facts={})

    async def main() -> None:
        log = AuditLog(audit_dir, KEY, writer_process=True)
        try:
            await log.append_encoded("operation", ok_fields(where, params, **rest))
        finally:
            await log.aclose()
        with AuditLog(audit_dir, KEY) as here:
            await here.append_encoded("operation", ok_fields(where, params, **rest))

    asyncio.run(main())
    text = (audit_dir / "audit.jsonl").read_text()
    assert "hunter2" not in text
    assert TOKEN not in text
    first, second = (json.loads(line) for line in text.splitlines())
    for record in (first, second):
        assert record["params"] == {
            "to": "a@example.org",
            "password": "[redacted]",
            "note": "key alk_[redacted]",
        }
        assert (record["count"], record["items"], record["duration_ms"]) == (3, 2, "inf")
        assert (record["outcome"], record["approval"], record["uid"]) == ("ok", "req-1", 1000)
    assert verify(audit_dir, KEY).ok


def test_fields_text_that_is_not_one_line_of_ascii_json_is_refused(tmp_path: Path) -> None:
    """Text spliced into a line as it is: a line break in it would start a line (a
    record) of its own, on disk and in the writer process's protocol."""

    async def main() -> list[str]:
        refused = []
        with AuditLog(tmp_path / "audit", KEY) as log:
            for text in (',"a":1\nR operation\t,"b":2', ',"a":"\t"', ',"a":"é"'):
                try:
                    await log.append_encoded("operation", text)
                except ValueError:
                    refused.append(text)
        return refused

    assert len(asyncio.run(main())) == 3
    assert (
        not (tmp_path / "audit" / "audit.jsonl").exists()
        or not (tmp_path / "audit" / "audit.jsonl").read_text()
    )
