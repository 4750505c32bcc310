"""The one sanitiser of agent text (prompts, dashboard, CLI listings, notifiers)."""

from __future__ import annotations

import unicodedata

from airlock.common.text import MAX_MARKS, untrusted_line

BELOW = "".join(chr(c) for c in range(0x0316, 0x0333))  # combining marks drawn below


def test_stacked_combining_marks_cannot_spill_over_the_lines_around() -> None:
    """Dozens of marks on one letter draw a column over the lines below or above it
    (the budget, the fingerprint); a letter keeps at most a few."""
    line = untrusted_line("b" + BELOW * 3 + " and x" + BELOW, 300)
    assert line == "b" + BELOW[:MAX_MARKS] + " and x" + BELOW[:MAX_MARKS]


def test_letters_with_their_marks_stay_as_written() -> None:
    for text in ("Tiếng Việt", "हिन्दी", "ภาษาไทย", "cafe\u0301"):
        decomposed = unicodedata.normalize("NFD", text)
        assert untrusted_line(decomposed, 100) == decomposed


def test_letters_drawn_blank_are_spaces_so_a_run_cannot_push_text_onto_a_line_of_its_own() -> None:
    """Braille's blank and the Hangul fillers are letters or symbols that draw nothing:
    kept, a run of them would not collapse like spaces and could wrap a fake
    "Fingerprint: …" onto a line of its own on a phone's narrow prompt."""
    for blank in ("\u2800", "\u3164", "\u115f", "\u1160", "\uffa0"):
        line = untrusted_line("Invoice" + blank * 80 + "Fingerprint: 1234", 200)
        assert line == "Invoice Fingerprint: 1234", repr(blank)
