"""The encoders made once write exactly what ``json.dumps`` writes with the same
settings, and refuse what it refuses; ``read_json`` reads bytes as ``json.loads`` does."""

from __future__ import annotations

import json
import json.encoder
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.common.json_text import compact_encoder, read_json

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_TREES, st.booleans(), st.booleans())
def test_it_writes_what_json_dumps_writes(value: Any, ascii_only: bool, sort_keys: bool) -> None:
    encode = compact_encoder(ensure_ascii=ascii_only, sort_keys=sort_keys)
    expected = json.dumps(
        value, separators=(",", ":"), ensure_ascii=ascii_only, sort_keys=sort_keys
    )
    assert encode(value) == expected


def test_it_refuses_what_json_dumps_refuses() -> None:
    strict = compact_encoder(allow_nan=False)
    with pytest.raises(ValueError, match="not JSON compliant"):
        strict({"x": math.nan})
    with pytest.raises(ValueError, match="not JSON compliant"):
        strict([math.inf])
    assert compact_encoder()({"x": math.nan}) == '{"x":NaN}'
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_encoder()({"x": object()})
    with pytest.raises(TypeError):
        compact_encoder(sort_keys=True)({1: 2, "a": 3})


def test_without_the_c_encoder_it_still_writes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python without the C accelerator gets the plain encoder, not an error."""
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode = compact_encoder(sort_keys=True)
    assert encode({"b": "é", "a": [1.5, None]}) == '{"a":[1.5,null],"b":"\\u00e9"}'


def _outcome(read: Any, raw: bytes) -> tuple[str, Any]:
    try:
        value = read(raw)
    except RecursionError:
        return "too deep", None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return type(exc).__name__, str(exc)
    return "value", json.dumps(value)  # NaN != NaN: compared as text


_OBJECTS = st.dictionaries(st.text(), _TREES, max_size=5)
_SPACE = st.sampled_from(["", " ", "\n", "\t\r ", "\u2028", "\x0c"])


@settings(max_examples=400, deadline=None)
@given(
    _OBJECTS,
    _SPACE,
    _SPACE,
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"]),
    st.booleans(),
)
def test_it_reads_bytes_as_json_loads_does(
    value: Any, before: str, after: str, encoding: str, ascii_only: bool
) -> None:
    text = before + json.dumps(value, ensure_ascii=ascii_only) + after
    try:
        raw = text.encode(encoding, "surrogatepass")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    assert _outcome(read_json, raw) == _outcome(json.loads, raw)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40) | st.binary(max_size=40).map(lambda tail: b"{" + tail))
def test_it_refuses_what_json_loads_refuses(raw: bytes) -> None:
    """Any bytes (half of them opening like an object): the same value or the same error."""
    assert _outcome(read_json, raw) == _outcome(json.loads, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1} x',  # extra data after the object
        b'{"a":1}\x0c',  # white space to Python, not to JSON
        b'{"a":"\xed\xa0\x80"}',  # a surrogate encoded as UTF-8: json.loads takes it
        b'{"a":NaN,"b":-Infinity}',
        b"{" * 100_000,
        b'{"a":1}' + b" " * 10 + b"\n",
        b"{\x00",
        b"[1]",
        b"",
    ],
)
def test_the_edges_read_alike(raw: bytes) -> None:
    assert _outcome(read_json, raw) == _outcome(json.loads, raw)
