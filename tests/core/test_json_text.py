"""The encoders made once write exactly what ``json.dumps`` writes with the same
settings, and refuse what it refuses."""

from __future__ import annotations

import json
import json.encoder
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.common.json_text import compact_encoder

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
