"""The OpenRouter key withheld however an answer spells it, and text that could hide it
not shown."""

from __future__ import annotations

import json

import pytest

from airlock_openrouter._withhold import WITHHELD, KeyWithholder

KEY = "sk-or-v1-WITHHOLDCANARY0123456789"
SLASHED = "sk-or-v1-abc/def+ghi/0123456789"
withhold = KeyWithholder(KEY)


def test_the_raw_key_goes_from_read_json() -> None:
    assert withhold.read_json(f'{{"m": "x {KEY} y"}}'.encode()) == {"m": f"x {WITHHELD} y"}


def test_a_key_spelled_with_php_slashes_is_withheld_once_read() -> None:
    escaped = json.dumps({"m": SLASHED}).replace("/", "\\/").encode()  # as PHP writes JSON
    found = KeyWithholder(SLASHED).read_json(escaped)["m"]
    assert found.replace(WITHHELD, "") == ""  # the raw run before an escape, and the rest


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_in_another_encoding_is_not_read(encoding: str) -> None:
    """``json.loads`` of bytes reads UTF-16 and UTF-32 too, where a search for the key's
    UTF-8 bytes finds nothing: such an answer is no answer."""
    with pytest.raises(ValueError, match=r"UTF-8|Expecting"):
        withhold.read_json(json.dumps({"m": KEY}).encode(encoding))


def test_only_an_escape_that_could_spell_the_key_makes_the_json_walked() -> None:
    """A streamed token holding ``\\n`` costs no walk for a key no short escape spells."""
    assert not withhold.may_spell_it('{"content": "line\\nnext \\"quoted\\""}')
    assert withhold.may_spell_it('{"content": "\\u0073k"}')
    assert KeyWithholder(SLASHED).may_spell_it('{"content": "a\\/b"}')


@pytest.mark.parametrize(
    "body",
    [
        b"Bearer \\u0073k-or-v1-WITHHOLD...",  # an escape, in text that is not JSON
        f"Bearer {KEY}".encode("utf-16"),  # not UTF-8
        b"Bearer s\x00k\x00-\x00o\x00r",  # a control character between its letters
    ],
)
def test_text_that_could_hide_the_key_is_not_shown(body: bytes) -> None:
    assert withhold.shown(body, cut=False) is None


def test_the_start_of_the_key_at_the_end_of_a_cut_body_is_dropped() -> None:
    body = f"echo: Bearer {KEY[:-1]}".encode()  # a long start is withheld as a run
    assert withhold.shown(body, cut=True) == f"echo: Bearer {WITHHELD}"
    assert withhold.shown(f"echo: Bearer {KEY[:5]}".encode(), cut=True) == "echo: Bearer "
    assert withhold.shown(f"x {KEY} y".encode(), cut=False) == f"x {WITHHELD} y"


def test_an_echo_cut_short_shows_no_run_of_the_key() -> None:
    """A gateway quoting the request up to a length the agent moves by padding its own
    input: the key but its last character would have shown."""
    assert withhold.from_text(f"hdr: Bearer {KEY[:-1]}") == f"hdr: Bearer {WITHHELD}"
    assert withhold.read_json(f'{{"m": "Bearer {KEY[:20]}"}}'.encode()) == {
        "m": f"Bearer {WITHHELD}"
    }


def test_a_stored_key_is_trimmed_and_visible_ascii_only() -> None:
    """A server trims a header's blanks, so an echo of a key pasted with a tab would not
    be the key as stored; one reading headers as Latin-1 echoes other characters changed."""
    from pydantic import ValidationError

    from airlock_openrouter._models import OpenRouterCredentials

    trimmed = OpenRouterCredentials.model_validate({"api_key": f" {KEY}\t"})
    assert trimmed.api_key.get_secret_value() == KEY
    for bad in ("sk-or-v1-ünïcode", "sk-or v1", "   "):
        with pytest.raises(ValidationError):
            OpenRouterCredentials.model_validate({"api_key": bad})


def test_a_plain_text_error_not_cut_short_keeps_its_end() -> None:
    assert withhold.shown(b"Unknown models", cut=False) == "Unknown models"
