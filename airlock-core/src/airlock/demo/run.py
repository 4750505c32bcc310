"""The demo script: each step prints what happens, as a newcomer would watch it.

It runs the real product: a real daemon process on a real socket, the Python client as
the agent, TOTP codes computed by a simulated phone from the enrolled secret.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from airlock.clients.local_daemon import LocalDaemon
from airlock.common.clock import SystemClock
from airlock.demo.phone import PERIOD, SimulatedPhone
from airlock.demo.sample_mail import SIGN_IN_CODE, write_sample_maildir
from airlock.errors import AirlockError
from airlock.security.audit import verify_dir
from airlock.security.totp import Enrolment
from airlock.settings.config import TotpConfig
from airlock.settings.paths import AirlockPaths, resolve_paths
from airlock.state.store import StateStore


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, title: str) -> None:
    say(f"\n\033[1m{number}. {title}\033[0m" if sys.stdout.isatty() else f"\n{number}. {title}")


@contextmanager
def demo_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="airlock-demo-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def console_prompt(log: Path) -> str:
    """The last approval prompt the daemon printed on its terminal."""
    text = log.read_text(encoding="utf-8", errors="replace")
    start = text.rfind("=" * 60, 0, text.rfind("=" * 60))
    return text[start:].split("\n[airlock]")[0].strip() if start >= 0 else "(no prompt yet)"


async def agent_and_person(paths: AirlockPaths, log: Path, phone: SimulatedPhone) -> None:
    from airlock.client import AirlockClient

    async with AirlockClient(paths.socket, agent="demo-agent") as agent:
        step(3, "The agent asks for read access to the mailbox")
        created = await agent.submit_request(["mail"], "Summarise my unread mail", ttl="10m")
        say(f"   request {created.code}, fingerprint {created.fingerprint}; the daemon shows:")
        await asyncio.sleep(0.3)
        for line in console_prompt(log).splitlines():
            say(f"   | {line}")

        step(4, "The person answers from their phone with a 6-digit code (simulated)")
        code = phone.code()
        say(f"   phone shows {code}; the person sends it")
        await agent.approve(created.code, code)
        grant = await agent.await_approval(created, wait=10)
        say(f"   approved: session {grant.id}, read-only, on {grant.services}")
        say("   (the agent holds the token in memory; the person never handles it)")

        step(5, "The agent reads: results arrive marked untrusted")
        listed = await agent.call("mail", "list_messages", {"limit": 10}, token=grant.token)
        for msg in listed.result["messages"]:
            flag = "unread" if msg["unread"] else "read  "
            say(f"   [{flag}] {msg['from'][:34]:<34} {msg['subject']}")
        say(f"   untrusted: {listed.untrusted} (the injection mail is data, never instructions)")

        step(6, "A sign-in code in the mail is masked before the agent sees it")
        found = await agent.call("mail", "search", {"query": "subject:sign-in"}, token=grant.token)
        msg_id = found.result["messages"][0]["id"]
        message = await agent.call("mail", "get_message", {"id": msg_id}, token=grant.token)
        say("   " + message.result["text"].strip().replace("\n", "\n   "))
        assert SIGN_IN_CODE not in message.result["text"]

        step(7, "A write without its own approval is refused")
        try:
            await agent.call("mail", "mark_read", {"id": msg_id}, token=grant.token)
            say("   !! the write went through: this should never happen")
        except AirlockError as exc:
            say(f"   refused ({exc.code}): {exc.message}")

        step(8, "A replayed code is refused")
        again = await agent.submit_request(["mail"], "Once more, please")
        try:
            await agent.approve(again.code, code)
            say("   !! the replayed code was accepted: this should never happen")
        except AirlockError as exc:
            say(f"   refused ({exc.code}): {exc.message}")
        await agent.deny(again.code)
        await agent.revoke(grant.id)
        say(f"   session {grant.id} revoked")


def dashboard_url(paths: AirlockPaths, timeout: float = 10.0) -> str | None:
    """The demo daemon's dashboard address, once it listens (None if it did not start)."""
    target = paths.run_dir / "dashboard.url"
    deadline = time.monotonic() + timeout
    while not target.exists():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return target.read_text(encoding="utf-8").strip()


def keep_running(home: Path, paths: AirlockPaths, phone: SimulatedPhone) -> None:
    """``--keep``: the demo daemon again, with its dashboard, until Ctrl-C."""
    with LocalDaemon(home):
        url = dashboard_url(paths)
        say(f"\nThe demo daemon keeps running (AIRLOCK_HOME={home}).")
        say(f"Dashboard: {url or 'not started: see ' + str(home / 'daemon.log')}")
        say("Log in and approve with the simulated phone's codes, shown here as they change.")
        say(f"Ask for access from another terminal: AIRLOCK_HOME={home} airlock request mail \\")
        say('    --reason "look around"')
        say("Ctrl-C stops the daemon and deletes the demo home.")
        shown = -1
        try:
            while True:
                step = int(time.time() // PERIOD)
                if step != shown:
                    shown = step
                    code = phone.totp_at(step)
                    say(f"   phone shows {code} (for {PERIOD - int(time.time() % PERIOD)} s)")
                time.sleep(1)
        except KeyboardInterrupt:
            say("\nstopping the demo daemon")


def run_demo(*, keep: bool = False) -> int:
    with demo_home() as home:
        env = {**os.environ, "AIRLOCK_HOME": str(home)}
        paths = resolve_paths(env)
        paths.ensure_data_dirs()
        say("Airlock demo: a throwaway home, a sample mailbox, a real daemon.")
        say("No account and no network are needed.")
        say(f"home: {home}")

        step(1, "Sample mailbox and config")
        maildir = write_sample_maildir(home / "Maildir")
        config = {
            "services": {"mail": {"connector": "maildir", "path": str(maildir)}},
            # A free port: the person's own daemon may hold the default one.
            "dashboard": {"listen": "127.0.0.1:0"},
        }
        paths.config_file.write_text(yaml.safe_dump(config))
        say(f"   4 messages in {maildir} (one carries a prompt injection, one a sign-in code)")

        step(2, "TOTP enrolment: the person scans a QR code (here: a simulated phone)")
        with StateStore(paths.state_db) as store:
            enrolment = Enrolment(
                paths.totp_file, store, TotpConfig(account="demo@airlock"), SystemClock()
            )
            phone = SimulatedPhone(enrolment.secret)
            say(f"   {enrolment.uri.split('?')[0]}?secret=…")
            enrolment.confirm(phone.code())
        say("   enrolled after the first correct code")

        with LocalDaemon(home) as daemon:
            say(f"   daemon running on {paths.socket}")
            url = dashboard_url(paths)
            asyncio.run(agent_and_person(paths, daemon.log, phone))

        step(9, "The audit trail")
        from airlock.security.audit import query

        for record in query(paths.audit_dir):
            details = {
                k: v
                for k, v in record.items()
                if k
                in ("service", "op", "request", "session", "outcome", "channel", "why", "reason")
            }
            say(f"   {record['seq']:>3} {record['event']:<18} {details}")
        result = verify_dir(paths.audit_dir, paths.audit_key_file)
        verdict = "OK" if result.ok else "FAILED"
        say(f"   airlock audit verify: {verdict} ({result.records} records)")
        if keep:
            keep_running(home, paths, phone)
            say("Done. The demo home was deleted.")
        else:
            say(f"\nThe web dashboard showed all this at {url} while the daemon ran.")
            say("Hint: `airlock demo --keep` keeps the demo daemon running to look around there.")
            say("\nDone. Nothing is left running; the demo home was deleted.")
        return 0 if result.ok else 1
