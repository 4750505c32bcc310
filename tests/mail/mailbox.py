"""The mailbox the test IMAP server is seeded with: 200+ messages over many folders.

It is the shared corpus (:mod:`tests.mail.corpus`: the nasty cases every mail backend is
tested on) plus generated mail that makes it the size of a real inbox: plain and
HTML-only messages, multipart alternatives, attachments, quoted-printable, non-ASCII
subjects, senders and folder names (``Entwürfe``), nested folders and iCloud's and
Gmail's usual folder names. Generation uses a fixed seed, so every run sees the same
mailbox; every generated message is older than the corpus's own.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from imapclient.imap_utf7 import encode as encode_utf7

from tests.mail.corpus import NOW, build_corpus

__all__ = [
    "EXTRA_FOLDERS",
    "ME",
    "SeedMessage",
    "dovecot_mailbox",
    "generated_mail",
    "maildir_dir_name",
]

ME = "me@example.test"
# Folders besides the corpus's (INBOX, Sent, Archive) -> how many messages they hold.
EXTRA_FOLDERS = {
    "Sent Messages": 6,
    "Deleted Messages": 3,
    "Junk": 4,
    "Drafts": 2,
    "Work/Projects": 5,
    "Entwürfe": 2,
    "Empty": 0,
}


@dataclass(frozen=True)
class SeedMessage:
    """One message to put in a folder: raw RFC 5322 bytes, flags and arrival time."""

    folder: str
    raw: bytes
    received: dt.datetime
    seen: bool = False
    flagged: bool = False

    @property
    def flags(self) -> str:
        """Maildir info flags, in the alphabetical order Maildir requires."""
        return ("F" if self.flagged else "") + ("S" if self.seen else "")


def maildir_dir_name(folder: str) -> str:
    """The Maildir++ directory of *folder* ('' for INBOX), names in modified UTF-7."""
    if folder == "INBOX":
        return ""
    encoded = encode_utf7(folder).decode("ascii")
    return "." + encoded.replace("/", ".")


PEOPLE = [
    ("Alice Martin", "alice@example.org"),
    ("Bob Stone", "bob@example.net"),
    ("Jürgen Müller", "juergen@beispiel.de"),
    ("Zoë Lefèvre", "zoe@exemple.fr"),
    ("Иван Петров", "ivan@primer.ru"),
    ("山田太郎", "taro@rei.jp"),
    ("Carol Nguyen", "carol@example.com"),
    ("GitHub", "noreply@github.example"),
    ("The Weekly Digest", "newsletter@digest.example"),
    ("Bank of Example", "alerts@bank.example"),
]

SUBJECTS = [
    "Lunch on Thursday?",
    "Re: project timeline",
    "Invoice {n} for October",
    "Grüße aus München",
    "Привет из Москвы",
    "会議の件について",
    "Your weekly digest #{n}",
    "[repo] Pull request #{n} opened",
    "Café meeting notes ☕",
    "Quarterly numbers",
    "Travel plans for {n}",
    "Fwd: photos from the weekend",
]

WORDS = [
    "the",
    "report",
    "is",
    "attached",
    "please",
    "review",
    "before",
    "our",
    "meeting",
    "next",
    "week",
    "and",
    "let",
    "me",
    "know",
    "what",
    "you",
    "think",
    "about",
    "the",
    "budget",
    "numbers",
    "timeline",
    "and",
    "the",
    "open",
    "questions",
    "from",
    "the",
    "customer",
    "call",
    "we",
    "also",
    "need",
    "to",
    "book",
    "the",
    "room",
    "and",
    "send",
    "the",
    "agenda",
    "to",
    "everyone",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _base(subject: str, sender: tuple[str, str], when: dt.datetime, to: str = ME) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address(display_name=sender[0], addr_spec=sender[1])
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=sender[1].split("@")[1])
    return msg


def _generated(rng: random.Random, n: int, when: dt.datetime) -> bytes:
    name, addr = rng.choice(PEOPLE)
    subject = rng.choice(SUBJECTS).format(n=n)
    msg = _base(subject, (name, addr), when)
    kind = n % 5
    body = "\n\n".join(_text(rng, rng.randint(8, 40)) for _ in range(rng.randint(1, 4)))
    if kind == 0:
        msg.set_content(body)
    elif kind == 1:
        msg.set_content(body)
        msg.add_alternative(f"<html><body><p>{body}</p></body></html>", subtype="html")
    elif kind == 2:
        msg.set_content(f"<html><body><h1>{subject}</h1><p>{body}</p></body></html>", "html")
    elif kind == 3:
        msg.set_content(body + "\n\nGrüße, " + name)
        msg.add_attachment(
            rng.randbytes(300 + n), "application", "octet-stream", filename=f"data-{n}.bin"
        )
    else:
        msg["Cc"] = "Team <team@example.org>"
        msg.set_content(body, charset="utf-8", cte="quoted-printable")
    return bytes(msg)


def generated_mail(count: int, *, seed: int = 5, folder: str = "INBOX") -> list[SeedMessage]:
    """*count* ordinary messages, oldest first, one every ~1.5 days back from two weeks
    before :data:`NOW`; about a third of them unread, some flagged."""
    rng = random.Random(f"{seed}-{folder}")
    out = []
    for n in range(count):
        when = NOW - dt.timedelta(days=14 + 1.5 * (count - n), minutes=rng.randint(0, 600))
        raw = _generated(rng, n, when)
        out.append(SeedMessage(folder, raw, when, seen=rng.random() < 0.66, flagged=n % 17 == 0))
    return out


def dovecot_mailbox(inbox_extra: int = 200) -> list[SeedMessage]:
    """The corpus, *inbox_extra* generated INBOX messages, and the extra folders."""
    messages = generated_mail(inbox_extra)
    for folder, count in EXTRA_FOLDERS.items():
        messages.extend(generated_mail(count, folder=folder))
    messages.extend(SeedMessage(m.folder, m.raw, m.date, seen=m.seen) for m in build_corpus())
    return messages
