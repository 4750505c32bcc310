"""Letters passing for others in a write's parameters: the prompt names them
(``airlock.security.lookalikes``), on every channel, whatever the parameters' length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import Phone
from test_approvals import run, settle

from airlock.api import AccessRequestIn
from airlock.common.clock import FakeClock
from airlock.daemon.runtime import Runtime
from airlock.security.lookalikes import LOOKALIKE_LABEL, lookalikes
from airlock.security.peers import Peer

AGENT = Peer(uid=54321, pid=None)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("bob@c\u043empany.com", "Cyrillic \u043e U+043E"),  # о
        ("\u0430\u0440\u0440le.com", "Cyrillic \u0430 U+0430, Cyrillic \u0440 U+0440"),
        ("\uff50aypal.com", "Fullwidth \uff50 U+FF50"),
        ("\U0001d429aypal", "Mathematical \U0001d429 U+1D429"),
        ("\u0391pple", "Greek \u0391 U+0391"),  # Α
        ("g\u0585\u0585gle.com", "Armenian \u0585 U+0585"),  # օ
    ],
)
def test_a_word_mixing_copying_scripts_is_named_with_its_strange_letters(
    text: str, named: str
) -> None:
    line = lookalikes(f'{{"to": "{text}", "subject": "hi"}}')
    assert line == f"{text!r}: {named}"


@pytest.mark.parametrize(
    "text",
    [
        "bob@company.com",
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",  # Привет мир
        "Pok\u00e9mon na\u00efve stra\u00dfe 5\u00b5m",
        "\u6771\u4eac\u30bf\u30ef\u30fc",  # 東京タワー: kanji and katakana in one word
        "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1 and English",  # Ελλάδα, then Latin words
    ],
)
def test_honest_text_in_one_script_a_word_is_not_marked(text: str) -> None:
    assert lookalikes(text) is None


def test_many_spoofed_words_are_named_three_and_counted() -> None:
    words = " ".join(f"user{n}@g\u043eogle.com" for n in range(7))
    line = lookalikes(words)
    assert line is not None
    assert line.count("U+043E") == 3
    assert line.endswith("; 4 more")


def test_the_write_prompt_names_a_spoofed_word_even_past_the_parameters_cut(
    tmp_path: Path,
) -> None:
    """The parameters line is cut at 400 characters; a spoof after a long value is
    still named on its own line, and an honest write's prompt has no such line."""

    async def scenario(runtime: Runtime, totp: Any, phone: Phone, clock: FakeClock) -> None:
        for name in ("a" * 600 + " to bob@c\u043empany.com", "bob@company.com"):
            operation = {
                "service": "notes",
                "name": "save_note",
                "params": {"name": "note", "text": name},
            }
            body = AccessRequestIn(services=["notes"], reason="save it", operation=operation)
            await runtime.approvals.create_request(body, AGENT)
            await settle()
        spoofed, honest = (dict(prompt.lines) for prompt in phone.sent)
        assert "c\u043empany" not in spoofed["Parameters"], "cut off the parameters line"
        assert spoofed[LOOKALIKE_LABEL] == "'bob@c\u043empany.com': Cyrillic \u043e U+043E"
        assert LOOKALIKE_LABEL not in honest

    run(tmp_path, scenario)
