"""HTML mail rendered to readable plain text, with the stdlib's forgiving HTMLParser.

An agent reads mail as text. Many messages are HTML only, and markup wastes the agent's
context and hides what a person would see. The renderer keeps what a person sees:
text, line structure, list bullets, link targets as ``text (url)``; and drops what a
person does not see: scripts, styles, the head, comments and elements hidden with
``hidden``, ``display:none`` or ``visibility:hidden`` (a favourite hiding place for
prompt injections). It never raises on broken markup.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_INVISIBLE = frozenset({"script", "style", "head", "title", "noscript", "template", "svg"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
# Blocks start on a new line; paragraphs are also set apart by a blank line.
_PARAGRAPH = frozenset(
    {"blockquote", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul"}
)
_BLOCK = _PARAGRAPH | frozenset(
    {
        "address", "article", "aside", "body", "center", "dd", "div", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "header", "html", "li", "main", "nav",
        "section", "tbody", "tfoot", "thead", "tr",
    }
)  # fmt: skip
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_LINK_SCHEMES = ("http://", "https://", "mailto:")
_SOURCE_WHITESPACE = re.compile(r"\s+")
_SPACES = re.compile(r"[ \t\f\v\r\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Fed after the mail: it ends whatever the sender left open at the end (a quoted
# attribute, a tag, a comment, a marked section), and is plain text, cut off again,
# when nothing was. Python 3.11's HTMLParser, at the end of its input, looks for the
# end of each construct left open through all the rest of the input, once per
# construct: 256 KB of "<a b='" took 217 s of CPU, of "</" 8 s.
_CLOSER = "'\"-->]]>"


class _Renderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._open: list[str] = []  # tags seen open, to close leniently
        # How many of each tag are open: a sender's mail may leave a hundred thousand
        # open, and looking through the list for each end tag and each run of text made
        # rendering quadratic (a 560 KB message took 73 s of CPU, 64 MB hours).
        self._opened: Counter[str] = Counter()
        self._skip_at: int | None = None  # depth of the outermost invisible element
        self._link: tuple[str, int] | None = None  # (href, len(out) at <a>)
        self._newlines = 0  # line breaks owed before the next text

    def _text(self, text: str) -> None:
        if self._newlines and not text.strip():
            return  # indentation between blocks is not text
        if self._newlines and self.out:
            self.out.append("\n" * self._newlines)
        self._newlines = 0
        self.out.append(text)

    def _break(self, tag: str) -> None:
        self._newlines = max(self._newlines, 2 if tag in _PARAGRAPH else 1)

    # The HTMLParser API: starttag / endtag / data.
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if self._skip_at is None:
                self._void(tag, dict(attrs))
            return
        self._open.append(tag)
        self._opened[tag] += 1
        if self._skip_at is not None:
            return
        if tag in _INVISIBLE or _is_hidden(dict(attrs)):
            self._skip_at = len(self._open)
            return
        if tag in _BLOCK:
            self._break(tag)
        if tag == "li":
            self._text("- ")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            self._link = (href, len(self.out)) if href.lower().startswith(_LINK_SCHEMES) else None
        elif tag in ("td", "th"):
            self._text(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_at is None and tag in _VOID:
            self._void(tag, dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if not self._opened[tag]:
            return  # a stray end tag closes nothing
        while self._open:
            closed = self._open.pop()
            self._opened[closed] -= 1
            if self._skip_at is not None and len(self._open) < self._skip_at:
                self._skip_at = None
            elif self._skip_at is None:
                self._close(closed)
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skip_at is None:
            # Source line breaks are spaces in HTML, except inside <pre>.
            self._text(data if self._opened["pre"] else _SOURCE_WHITESPACE.sub(" ", data))

    def _void(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "br":
            self._text("\n")
        elif tag == "hr":
            self._break("p")
            self._text("----")
            self._break("p")
        elif tag == "img" and (attrs.get("alt") or "").strip():
            self._text(f"[image: {(attrs.get('alt') or '').strip()}]")

    def _close(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            href, start = self._link
            self._link = None
            label = "".join(self.out[start:]).strip()
            target = href.removeprefix("mailto:") if href.startswith("mailto:") else href
            if label != target and label != href:
                self._text(f" ({href})" if label else href)
        elif tag in _BLOCK:
            self._break(tag)


def _is_hidden(attrs: dict[str, str | None]) -> bool:
    return "hidden" in attrs or bool(_HIDDEN_STYLE.search(attrs.get("style") or ""))


def html_to_text(html: str) -> str:
    """Render *html* as plain text: one paragraph per block, whitespace collapsed."""
    renderer = _Renderer()
    with contextlib.suppress(Exception):  # forgiving already; keep what rendered if not
        renderer.feed(html)
        renderer.feed(_CLOSER)
        renderer.close()
    return _without_closer(_tidy("".join(renderer.out)))


def _without_closer(text: str) -> str:
    """*text* without the closer, or the part of it left when it ended something."""
    for start in range(len(_CLOSER)):
        if text.endswith(_CLOSER[start:]):
            return text[: len(text) - len(_CLOSER) + start].rstrip()
    return text


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
