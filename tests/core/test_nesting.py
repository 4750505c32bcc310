"""The one nesting check that bodies (32 levels) and audit listings (64) use."""

from __future__ import annotations

import json

from airlock.common.nesting import nested_deeper_than


def test_the_limit_is_the_deepest_level_allowed_and_a_top_level_object_is_one() -> None:
    at_32 = json.loads("[" * 31 + "{}" + "]" * 31)
    assert not nested_deeper_than(at_32, 32)
    assert nested_deeper_than([at_32], 32)
    assert not nested_deeper_than({"text": "x", "n": 1}, 1)
    assert not nested_deeper_than("a string", 0)


def test_a_value_far_past_the_stack_is_checked_without_recursion() -> None:
    deep = json.loads("[" * 900 + "]" * 900)
    for _ in range(5):
        deep = [deep] * 2  # wide as well as deep: stops at the first level past the limit
    assert nested_deeper_than(deep, 64)
