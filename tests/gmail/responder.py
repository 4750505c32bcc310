"""A scripted IMAP server that answers the way Gmail does, for what Dovecot cannot do.

Gmail's extensions (``X-GM-RAW`` search, ``X-GM-LABELS``) and its login refusals exist
only at Google, so the gmail tests point the production connector at this responder
through its normal settings (host, port, ``security: none`` on loopback). It speaks the
wire forms Gmail uses (field notes): ``UID SEARCH CHARSET UTF-8 X-GM-RAW "..."`` with a
non-ASCII query as a synchronising literal (Gmail offers LITERAL-, not LITERAL+),
``FETCH ... (X-GM-LABELS (...))``, ``[Gmail]/...`` folders with special-use flags,
LIST-STATUS, and the NO texts of a wrong password, IMAP turned off, and a sign-in to
confirm in a browser. It records every command line it receives, so tests assert the
exact bytes the connector sent.
"""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

CAPABILITY = (
    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS "
    "COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED "
    "LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584"
)
FOLDERS = [
    ("\\HasNoChildren", "INBOX"),
    ("\\HasChildren \\Noselect", "[Gmail]"),
    ("\\All \\HasNoChildren", "[Gmail]/All Mail"),
    ("\\Drafts \\HasNoChildren", "[Gmail]/Drafts"),
    ("\\HasNoChildren \\Important", "[Gmail]/Important"),
    ("\\HasNoChildren \\Sent", "[Gmail]/Sent Mail"),
    ("\\HasNoChildren \\Junk", "[Gmail]/Spam"),
    ("\\Flagged \\HasNoChildren", "[Gmail]/Starred"),
    ("\\HasNoChildren \\Trash", "[Gmail]/Trash"),
]
UIDVALIDITY = 11
# user -> the NO text Gmail gives it (the password is never checked for these)
REFUSALS = {
    "disabled@gmail.com": "[ALERT] Your account is not enabled for IMAP use. Please visit "
    "your Gmail settings page and enable your account for IMAP access. (Failure)",
    "browser@gmail.com": "[ALERT] Please log in via your web browser: "
    "https://support.google.com/mail/accounts/answer/78754 (Failure)",
    "apppassword@gmail.com": "[ALERT] Application-specific password required: "
    "https://support.google.com/accounts/answer/185833 (Failure)",
}
ECHOING = "echo@gmail.com"
WRONG_PASSWORD = "[AUTHENTICATIONFAILED] Invalid credentials (Failure)"


@dataclass
class GmailMessage:
    uid: int
    raw: bytes
    labels: str  # as Gmail writes them inside X-GM-LABELS (...)
    structure: str  # BODYSTRUCTURE, as Gmail would compute it
    seen: bool = False

    @property
    def header(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"

    @property
    def text(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[1]

    def fields(self, names: list[str]) -> bytes:
        wanted = {n.upper() for n in names}
        lines = [
            line
            for line in self.header.split(b"\r\n")
            if line and line.split(b":", 1)[0].decode().upper() in wanted
        ]
        return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _mail(*headers: str, body: str) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


TEXT_PLAIN = '("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" {size} 1 NIL NIL NIL NIL)'
MESSAGES = [
    GmailMessage(
        101,
        _mail(
            "From: Alice <alice@example.com>",
            "To: me@gmail.com",
            "Subject: Team lunch",
            "Date: Mon, 24 Feb 2025 10:00:00 +0000",
            "Content-Type: text/plain; charset=UTF-8",
            body="Lunch at noon?\r\n",
        ),
        '("\\\\Important" "\\\\Inbox" Friends)',
        TEXT_PLAIN,
        seen=True,
    ),
    GmailMessage(
        102,
        _mail(
            "From: Billing <billing@example.com>",
            "To: me@gmail.com",
            "Subject: Your invoice",
            "Date: Thu, 27 Feb 2025 09:00:00 +0000",
            'Content-Type: multipart/mixed; boundary="B"',
            body="--B\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nInvoice attached.\r\n"
            '--B\r\nContent-Type: application/pdf; name="invoice.pdf"\r\n'
            'Content-Disposition: attachment; filename="invoice.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n",
        ),
        '("\\\\Inbox" "Finanzen/Rechnungen" &AMQ-rger)',
        '(("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 18 1 NIL NIL NIL NIL)'
        '("APPLICATION" "PDF" ("NAME" "invoice.pdf") NIL NIL "BASE64" 14 NIL '
        '("ATTACHMENT" ("FILENAME" "invoice.pdf")) NIL NIL) "MIXED" ("BOUNDARY" "B") NIL NIL NIL)',
    ),
    GmailMessage(
        103,
        _mail(
            "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>",
            "To: me@gmail.com",
            "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
            "Date: Fri, 28 Feb 2025 18:00:00 +0100",
            "Content-Type: text/plain; charset=UTF-8",
            body="Bis bald in München.\r\n",
        ),
        '("\\\\Inbox")',
        TEXT_PLAIN,
    ),
]


@dataclass
class Script:
    """What the responder knows and what it saw."""

    password: str = "abcdefghijklmnop"
    capability: str = CAPABILITY
    messages: list[GmailMessage] = field(default_factory=lambda: list(MESSAGES))
    search: Callable[[str], list[int]] = lambda query: [
        m.uid for m in MESSAGES if "has:attachment" not in query or m.uid == 102
    ]
    commands: list[bytes] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    connections: list[list[bytes]] = field(default_factory=list)
    """The command lines of each connection, in the order the connections came."""
    ended: list[threading.Event] = field(default_factory=list)
    """Set when the responder is done with that connection (the client left)."""
    hold: str | None = None
    """A command (``SELECT``, ``STATUS``) answered only once :attr:`release` is set."""
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def sent(self, verb: str) -> list[bytes]:
        """The command lines (tags removed) whose command is *verb*, e.g. ``UID SEARCH``."""
        found = [line.split(b" ", 1)[1] for line in self.commands if b" " in line]
        return [line for line in found if line.upper().startswith(verb.encode())]


_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|\{(\d+)\+?\}|([^\s()]+)|([()])')


class _Handler(socketserver.StreamRequestHandler):
    script: Script

    def handle(self) -> None:
        mine: list[bytes] = []
        ended = threading.Event()
        self.script.connections.append(mine)
        self.script.ended.append(ended)
        try:
            self.serve(mine)
        except OSError:
            pass  # the client cut the connection
        finally:
            ended.set()

    def serve(self, mine: list[bytes]) -> None:
        self.send("* OK Gimap ready for requests from 127.0.0.1")
        self.selected: str | None = None
        while True:
            command = self.read_command()
            if command is None:
                return
            line, tokens = command
            self.script.commands.append(line)
            mine.append(line)
            if len(tokens) < 2:
                self.send("* BAD Unknown command")
                continue
            tag, verb, args = tokens[0], str(tokens[1]).upper(), tokens[2:]
            if verb == "UID":
                verb, args = "UID " + str(args[0]).upper(), args[1:]
            if verb == self.script.hold:
                self.script.held.set()
                self.script.release.wait(30)
            if not self.dispatch(str(tag), verb, args):
                return

    # ------------------------------------------------------------------ wire

    def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.wfile.write(data + b"\r\n")
        self.wfile.flush()

    def read_command(self) -> tuple[bytes, list[str | bytes]] | None:
        """One command with its literals; returns the line as sent and its tokens."""
        whole = b""
        literals: list[bytes] = []
        while True:
            line = self.rfile.readline()
            if not line:
                return None
            whole += line
            mark = re.search(rb"\{(\d+)(\+?)\}\r\n$", line)
            if not mark:
                break
            if not mark.group(2):
                self.send("+ go ahead")
            literals.append(self.rfile.read(int(mark.group(1))))
            whole += literals[-1]
        tokens: list[str | bytes] = []
        for quoted, literal, atom, paren in _TOKEN.findall(whole.split(b"\r\n", 1)[0] + b" "):
            if literal:
                tokens.append(literals.pop(0) if literals else b"")
            elif atom or paren:
                tokens.append((atom or paren).decode())
            else:
                tokens.append(re.sub(rb"\\(.)", rb"\1", quoted).decode())
        # (this script only needs literals that end a command: LOGIN, X-GM-RAW)
        return whole.rstrip(b"\r\n"), tokens

    # ------------------------------------------------------------------ commands

    def dispatch(self, tag: str, verb: str, args: list[str | bytes]) -> bool:
        handler = {
            "CAPABILITY": self.capability,
            "LOGIN": self.login,
            "LIST": self.list,
            "STATUS": self.status,
            "EXAMINE": self.examine,
            "SELECT": self.select,
            "UID SEARCH": self.search,
            "UID FETCH": self.fetch,
            "UID STORE": self.store,
            "UID MOVE": self.move,
            "NOOP": self.noop,
        }.get(verb)
        if verb == "LOGOUT":
            self.send("* BYE LOGOUT Requested")
            self.send(f"{tag} OK 73 good day (Success)")
            return False
        if handler is None:
            self.send(f"{tag} BAD Unknown command")
            return True
        handler(tag, args)
        return True

    def capability(self, tag: str, args: list[str | bytes]) -> None:
        self.send(f"* CAPABILITY {self.script.capability}")
        self.send(f"{tag} OK Thats all she wrote! (Success)")

    def noop(self, tag: str, args: list[str | bytes]) -> None:
        self.send(f"{tag} OK Success")

    def login(self, tag: str, args: list[str | bytes]) -> None:
        user, password = (a.decode() if isinstance(a, bytes) else a for a in args[:2])
        if user in REFUSALS:
            self.send(f"{tag} NO {REFUSALS[user]}")
        elif user == ECHOING:  # a server that quotes the rejected command back
            self.send(f'{tag} NO [AUTHENTICATIONFAILED] no such login: "{user}" "{password}"')
        elif password != self.script.password:
            self.send(f"{tag} NO {WRONG_PASSWORD}")
        else:
            self.send(
                f"{tag} OK [CAPABILITY {self.script.capability}] {user} authenticated (Success)"
            )

    def list(self, tag: str, args: list[str | bytes]) -> None:
        for flags, name in FOLDERS:
            self.send(f'* LIST ({flags}) "/" "{name}"')
            if "RETURN" in args and "Noselect" not in flags:
                self.send(f'* STATUS "{name}" {self.counts(name)}')
        self.send(f"{tag} OK Success")

    def counts(self, folder: str) -> str:
        mine = self.script.messages if folder == "INBOX" else []
        return f"(MESSAGES {len(mine)} UNSEEN {sum(not m.seen for m in mine)})"

    def status(self, tag: str, args: list[str | bytes]) -> None:
        self.send(f'* STATUS "{args[0]!s}" {self.counts(str(args[0]))}')
        self.send(f"{tag} OK Success")

    def examine(self, tag: str, args: list[str | bytes], mode: str = "READ-ONLY") -> None:
        self.selected = str(args[0])
        self.send("* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)")
        self.send(f"* OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid.")
        self.send(f"* {len(self.script.messages)} EXISTS")
        self.send("* 0 RECENT")
        self.send(f"{tag} OK [{mode}] {self.selected} selected. (Success)")

    def select(self, tag: str, args: list[str | bytes]) -> None:
        self.examine(tag, args, "READ-WRITE")

    def search(self, tag: str, args: list[str | bytes]) -> None:
        words = [a.decode() if isinstance(a, bytes) else a for a in args]
        query = words[words.index("X-GM-RAW") + 1] if "X-GM-RAW" in words else " ".join(words)
        self.script.searches.append(query)
        uids = " ".join(str(u) for u in self.script.search(query))
        self.send(f"* SEARCH {uids}".rstrip())
        self.send(f"{tag} OK SEARCH completed (Success)")

    def fetch(self, tag: str, args: list[str | bytes]) -> None:
        wanted = {int(u) for u in str(args[0]).split(",")}
        items = " ".join(str(a) for a in args[1:])
        for seq, message in enumerate(self.script.messages, 1):
            if message.uid in wanted:
                self.send(b"* %d FETCH (%s)" % (seq, self.fetch_items(message, items)))
        self.send(f"{tag} OK Success")

    def fetch_items(self, message: GmailMessage, items: str) -> bytes:
        out = [b"UID %d" % message.uid]
        if "FLAGS" in items:
            out.append(b"FLAGS (\\Seen)" if message.seen else b"FLAGS ()")
        if "X-GM-LABELS" in items:
            out.append(b"X-GM-LABELS " + message.labels.encode())
        if "RFC822.SIZE" in items:
            out.append(b"RFC822.SIZE %d" % len(message.raw))
        if "BODYSTRUCTURE" in items:
            out.append(
                b"BODYSTRUCTURE " + message.structure.format(size=len(message.text)).encode()
            )
        fields = re.search(r"HEADER\.FIELDS \( ?([A-Z0-9\- ]+?) ?\)", items)
        if fields:
            names = fields.group(1).split()
            data = message.fields(names)
            out.append(
                b"BODY[HEADER.FIELDS (%s)] {%d}\r\n%s" % (" ".join(names).encode(), len(data), data)
            )
        if "BODY.PEEK[TEXT]" in items:
            out.append(b"BODY[TEXT]<0> {%d}\r\n%s" % (len(message.text), message.text))
        if "BODY.PEEK[]" in items:
            out.append(b"BODY[]<0> {%d}\r\n%s" % (len(message.raw), message.raw))
        return b" ".join(out)

    def store(self, tag: str, args: list[str | bytes]) -> None:
        for message in self.script.messages:
            if str(message.uid) == str(args[0]):
                message.seen = str(args[1]).startswith("+")
        self.send(f"{tag} OK Success")

    def move(self, tag: str, args: list[str | bytes]) -> None:
        self.script.messages = [m for m in self.script.messages if str(m.uid) != str(args[0])]
        self.send(f"* OK [COPYUID {UIDVALIDITY} {args[0]!s} 500] (Success)")
        self.send(f"{tag} OK Success")


@contextmanager
def gmail_responder(script: Script | None = None) -> Iterator[tuple[int, Script]]:
    """Serve *script* on a free loopback port; yields (port, script)."""
    script = script or Script()
    handler = type("Handler", (_Handler,), {"script": script})
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield server.server_address[1], script
        finally:
            server.shutdown()
