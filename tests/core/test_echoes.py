"""``withhold``: the secrets a service echoes back, kept out of anything read from it."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from airlock.plugin import withhold

SECRET = "tok-ECHOCANARY-0123456789"
OTHER = "pw-SECONDCANARY"

texts = st.one_of(
    st.text(max_size=8),
    st.tuples(st.text(max_size=4), st.sampled_from([SECRET, OTHER]), st.text(max_size=4)).map(
        "".join
    ),
)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=30,
)


@given(values)
def test_no_string_or_member_name_keeps_a_secret(value: Any) -> None:
    found = withhold(value, [SECRET, OTHER])
    shown = json.dumps(found, ensure_ascii=False)
    assert SECRET not in shown
    assert OTHER not in shown


@given(values)
def test_what_holds_no_secret_comes_back_equal_and_the_input_is_left_alone(value: Any) -> None:
    before = copy.deepcopy(value)
    found = withhold(value, [SECRET, OTHER])
    assert value == before
    if SECRET not in json.dumps(value) and OTHER not in json.dumps(value):
        assert found == value


def test_a_secret_inside_another_is_withheld_without_leaving_the_others_rest() -> None:
    inner, outer = "abc123", "xx-abc123-yy"
    assert withhold(f"a {outer} b {inner}", [inner, outer]) == "a [secret] b [secret]"


def test_json_nested_as_deep_as_it_reads_is_walked_without_recursion() -> None:
    depth = 50_000
    value: Any = {SECRET: [SECRET]}
    for _ in range(depth):
        value = [value]
    found = withhold(value, [SECRET], mark="[gone]")
    for _ in range(depth):
        found = found[0]
    assert found == {"[gone]": ["[gone]"]}


def test_no_secrets_or_only_empty_ones_leave_the_value_as_it_is() -> None:
    value = {"a": ["", "b"]}
    assert withhold(value, []) is value
    assert withhold(value, [""]) is value


def test_with_least_a_run_of_a_secret_cut_short_is_withheld_too() -> None:
    """An echo cut short shows all of a secret but its end; the agent could move the cut
    by padding its own input."""
    secret = "sk-or-v1-0123456789abcdef0123456789abcdef"
    assert withhold(f"Bearer {secret[:-1]}", [secret], least=12) == "Bearer [secret]"
    assert withhold(f"x{secret[5:30]}y", [secret], least=12) == "x[secret]y"
    assert withhold(f"ab {secret[:11]} cd", [secret], least=12) == f"ab {secret[:11]} cd"
    assert withhold("keys look like sk-or-v1-...", [secret], least=12) == (
        "keys look like sk-or-v1-..."
    )
    both = f"{secret[:20]} and {secret[-20:]}"
    assert withhold(both, [secret], least=12) == "[secret] and [secret]"


@given(st.text(alphabet="abc0123456789-", max_size=60), st.integers(0, 40), st.integers(1, 41))
def test_no_run_of_least_characters_of_the_secret_is_left(
    around: str, start: int, length: int
) -> None:
    secret = "sk-or-v1-0123456789abcdef0123456789abcdef"
    run = secret[start : start + length]
    shown = withhold(around[:30] + run + around[30:], [secret], least=12)
    assert not any(secret[i : i + 12] in shown for i in range(len(secret) - 11))
