"""The OpenRouter key withheld however an answer spells it."""

from __future__ import annotations

import json

from airlock_openrouter._withhold import WITHHELD, KeyWithholder

KEY = "sk-or-v1-WITHHOLDCANARY/+0123456789"
withhold = KeyWithholder(KEY)


def test_the_raw_key_goes_from_the_bytes() -> None:
    assert withhold.from_bytes(f'{{"m": "x {KEY} y"}}'.encode()) == b'{"m": "x [key withheld] y"}'


def test_an_escaped_key_is_not_in_the_bytes_but_is_found_once_read() -> None:
    escaped = json.dumps({"m": KEY}).replace("/", "\\/").encode()  # as PHP writes JSON
    assert withhold.from_bytes(escaped) == escaped  # not there to find as bytes
    assert withhold.may_spell_it(escaped)
    assert withhold.from_json(json.loads(escaped)) == {"m": WITHHELD}


def test_json_without_a_backslash_cannot_spell_the_key() -> None:
    assert not withhold.may_spell_it(json.dumps({"content": "plain text"}).encode())
