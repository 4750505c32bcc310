"""IMAP figures: ``list_messages`` against a hand-written imapclient baseline.

Starts a real Dovecot on loopback (the test suite's starter), seeds it with the test
mailbox (200+ INBOX messages), and times, as the median of ``--runs`` warm runs on one
logged-in connection each:

- ``airlock``: the imap connector's ``list_messages`` at limit 10, 50 and 100, with the
  IMAP commands it sent, counted on the wire by its guard;
- ``baseline_headers``: the obvious imapclient code for 50 summaries: EXAMINE, SEARCH
  ALL, then one FETCH of FLAGS, size and the header block per message, each parsed with
  the shared ``parse_summary`` (it yields no snippet and no attachment flag, so it does
  less than the connector);
- ``baseline_full``: the same with the whole message per FETCH, which gives the same
  summaries as the connector (what the first prototype did).

Loopback makes a round trip nearly free, so this is the least favourable setting for
batching; over a real network each saved command is a round trip (20-100 ms).
Prints one JSON object; needs Dovecot (``apt install dovecot-imapd``).

    uv run python benchmarks/imap.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the Dovecot starter and the mailbox live with the tests

from tests.mail.dovecot import DovecotServer, MailUser, running_dovecot  # noqa: E402
from tests.mail.mailbox import EXTRA_FOLDERS, dovecot_mailbox  # noqa: E402

from airlock_mail._imap_guard import READ_ONLY, WireGuard  # noqa: E402
from airlock_mail.imap import ImapConnector  # noqa: E402
from airlock_mail.mime import parse_summary  # noqa: E402

LIMITS = (10, 50, 100)
BASELINE_LIMIT = 50


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


class Connector:
    """The imap connector, opened once; ``run`` lists messages and counts commands."""

    def __init__(self, server: DovecotServer, account: MailUser) -> None:
        settings = ImapConnector.parse_settings(
            {
                "host": server.host,
                "port": server.port,
                "security": "none",
                "username": account.username,
            },
            service="bench",
        )
        credentials = ImapConnector.parse_credentials(
            {"password": account.password}, service="bench"
        )
        self.connector = ImapConnector(settings, credentials, service="bench")

    async def run(self, limit: int) -> int:
        before = self.connector.commands_sent
        found = await self.connector.call("list_messages", {"limit": limit})
        assert len(found.messages) == limit  # type: ignore[attr-defined]
        return self.connector.commands_sent - before


class Baseline:
    """The obvious imapclient code: one FETCH of *section* per message."""

    def __init__(self, server: DovecotServer, account: MailUser, section: str) -> None:
        self.client = IMAPClient(server.host, server.port, ssl=False)
        self.client.login(account.username, account.password)
        self.counter = WireGuard(READ_ONLY, self.client._imap.send)  # counts, refuses writes
        self.client._imap.send = self.counter.send
        self.section = section

    def run(self, limit: int) -> int:
        before = self.counter.commands_sent
        self.client.select_folder("INBOX", readonly=True)
        uids = sorted(self.client.search(["ALL"]))[-limit:]
        summaries = []
        for uid in reversed(uids):
            found = self.client.fetch([uid], ["FLAGS", "RFC822.SIZE", self.section])[uid]
            raw = next(v for k, v in found.items() if k.startswith(b"BODY["))
            summaries.append(
                parse_summary(
                    raw,
                    id=str(uid),
                    folder="INBOX",
                    unread=b"\\Seen" not in found[b"FLAGS"],
                    size=found[b"RFC822.SIZE"],
                )
            )
        assert len(summaries) == limit
        return self.counter.commands_sent - before


async def measure(server: DovecotServer, account: MailUser, runs: int) -> dict[str, Any]:
    """Interleaved: each round runs every variant once, so a busy machine slows all alike."""
    ours = Connector(server, account)
    await ours.connector.open()
    before = ours.connector.commands_sent
    await ours.run(BASELINE_LIMIT)
    first_call = ours.connector.commands_sent - before
    baselines = {
        "baseline_headers": Baseline(server, account, "BODY.PEEK[HEADER]"),
        "baseline_full": Baseline(server, account, "BODY.PEEK[]"),
    }
    samples: dict[str, list[float]] = {}
    commands: dict[str, int] = {}
    for _ in range(runs):
        for limit in LIMITS:
            started = time.perf_counter()
            commands[f"airlock/{limit}"] = await ours.run(limit)
            samples.setdefault(f"airlock/{limit}", []).append(time.perf_counter() - started)
        for name, base in baselines.items():
            started = time.perf_counter()
            commands[name] = base.run(BASELINE_LIMIT)
            samples.setdefault(name, []).append(time.perf_counter() - started)
    await ours.connector.close()
    for base in baselines.values():
        base.client.logout()
    figures: dict[str, Any] = {"airlock": {"first_call_commands": first_call}}
    for limit in LIMITS:
        key = f"airlock/{limit}"
        figures["airlock"][str(limit)] = {
            "commands": commands[key],
            "median_ms": median_ms(samples[key]),
        }
    for name in baselines:
        figures[name] = {
            str(BASELINE_LIMIT): {"commands": commands[name], "median_ms": median_ms(samples[name])}
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with running_dovecot() as server:
        mailbox = dovecot_mailbox()
        account = server.add_user(
            "bench@example.test", "bench-password", mailbox, folders=EXTRA_FOLDERS
        )
        measured = asyncio.run(measure(server, account, args.runs))
    ours, headers, full = (
        measured["airlock"],
        measured["baseline_headers"],
        measured["baseline_full"],
    )
    key = str(BASELINE_LIMIT)
    ratio = ours[key]["median_ms"] / headers[key]["median_ms"]
    commands = {ours[str(limit)]["commands"] for limit in LIMITS}
    figures = {
        "benchmark": "imap list_messages",
        "server": "dovecot (loopback)",
        "inbox_messages": sum(1 for m in mailbox if m.folder == "INBOX"),
        "runs": args.runs,
        "airlock": ours,
        "baseline_headers": headers,
        "baseline_full": full,
        "time_vs_baseline_headers": round(ratio, 2),
        "time_vs_baseline_full": round(ours[key]["median_ms"] / full[key]["median_ms"], 2),
        "targets": {
            "constant_commands": len(commands) == 1,
            "at_most_1.2x_baseline": ratio <= 1.2,
        },
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
