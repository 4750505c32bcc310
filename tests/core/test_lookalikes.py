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
        ("p\u0251ypal", "Latin \u0251 U+0251"),  # ɑ, a Latin letter of another sound
        ("paypa\u01c0", "Latin \u01c0 U+01C0"),  # ǀ, a click letter
        ("c\u2c9fmpany", "Coptic \u2c9f U+2C9F"),
        ("C\ua4f3MPANY.COM", "Lisu \ua4f3 U+A4F3"),
        ("\u13aapple", "Cherokee \u13aa U+13AA"),
        ("my-b\u0430nk.com", "Cyrillic \u0430 U+0430"),  # an address: whole, hyphen and all
        (
            "\u0430\u0440\u0440\u04cf\u0435-id.com",
            "Cyrillic \u0430 U+0430, Cyrillic \u0440 U+0440, "
            "Cyrillic \u04cf U+04CF, Cyrillic \u0435 U+0435",
        ),
        ("goog\u0196e.com", "Latin \u0196 U+0196"),  # Ɩ: Latin, of no living alphabet
        ("\u210ettps://bank.example", "Planck \u210e U+210E"),  # ℎ, a letterlike symbol
    ],
)
def test_a_word_of_latin_letters_and_letters_copying_them_is_named(text: str, named: str) -> None:
    line = lookalikes(f'{{"to": "{text}", "subject": "hi"}}')
    assert line == f"{text!r}: {named}"


def test_an_idn_name_in_punycode_is_named_with_what_it_spells() -> None:
    line = lookalikes('{"to": "bob@xn--80ak6aa92e.com"}')
    assert line == "'xn--80ak6aa92e.com': punycode for '\u0430\u0440\u0440\u04cf\u0435.com'"


@pytest.mark.parametrize(
    "text",
    [
        "bob@company.com",
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",  # Привет мир
        "Pok\u00e9mon na\u00efve stra\u00dfe 5\u00b5m 10\u03bcs",
        "\u6771\u4eac\u30bf\u30ef\u30fc",  # 東京タワー: kanji and katakana in one word
        "T\u30b7\u30e3\u30c4 \uff34\u30b7\u30e3\u30c4",  # Tシャツ: katakana copies no Latin
        "IT-\u043a\u043e\u043c\u043f\u0430\u043d\u0438\u044f SMS-\u043a\u043e\u0434",
        "\u03b2-blocker",  # β-blocker
        "IT\u2010\u043e\u0442\u0434\u0435\u043b",  # IT‐отдел, with U+2010 HYPHEN
        "Az\u0259rbaycan \u025bk\u0254 \u0253a",  # Azərbaycan; ɛ ɔ ɓ of West Africa
        "g\u0131thub.com",  # Turkish dotless ı: a letter of an alphabet (a weak spot too)
        "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1 and English",  # Ελλάδα, then Latin words
    ],
)
def test_honest_text_is_not_marked(text: str) -> None:
    assert lookalikes(text) is None


def test_a_spoofed_address_is_named_first_whatever_comes_before_it() -> None:
    """Keys are sorted, so a body comes before `to`: mixed words in it (decoys) must
    not push the address off the line."""
    decoys = " ".join(f"w{n}\u0430" for n in range(50))
    line = lookalikes(f'{{"body": "{decoys}", "to": "bob@c\u043empany.com"}}')
    assert line is not None
    assert line.startswith("'bob@c\u043empany.com': Cyrillic \u043e U+043E; ")


def test_many_spoofed_words_are_named_as_room_allows_and_counted() -> None:
    words = " ".join(f"user{n}@g\u043eogle.com" for n in range(7))
    line = lookalikes(words)
    assert line is not None
    assert len(line) <= 200
    named = line.count("U+043E")
    assert 1 <= named < 7
    assert line.endswith(f"; {7 - named} more")


def test_a_name_of_thousands_of_punycode_labels_is_not_decoded() -> None:
    """No domain name has more than 253 characters: decoding 70,000 labels took 2.4 s
    on the daemon's event loop, at each render of the prompt and of the dashboard."""
    assert lookalikes("xn--80ak6aa92e." * 70_000) is None


def test_a_megabyte_of_parameters_is_checked_in_linear_time() -> None:
    """A word without a copying letter however long, and words of them however many, are
    found by the regex engine from each word's start only (at first, a long run of
    letters took quadratic time)."""
    assert lookalikes("\u6771" * 350_000 + " xn" * 100_000) is None
    found = lookalikes(" ".join(f"x{n:05d}\u0430" for n in range(130_000)))
    assert found is not None
    assert found.endswith("more")


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
