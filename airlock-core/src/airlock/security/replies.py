"""What a person's message on a channel means: a code, a denial, a command, or a
question (see docs/security.md). Notifiers only transport; this decides.

A message from anyone but the configured sender is audited (throttled) and never used.
A code is taken for a request only when it replies to that request's prompt, or when it
is a bare message, exactly one request is pending, and no other request waited in the
last :data:`BARE_CODE_SETTLE` seconds (approved ones aside).
"""

from __future__ import annotations

import re

from airlock.common.clock import Clock
from airlock.errors import ApprovalsLocked, InvalidCode, NotFound, NotPending
from airlock.framework.notifiers import Notice, Reply
from airlock.security.approvals import ApprovalService
from airlock.security.audit import Auditor
from airlock.security.channels import Channels
from airlock.security.throttle import AuditThrottle

TOTP_REPLY = re.compile(r"^\s*(\d{3})[ -]?(\d{3})\s*$")
DENY_WORDS = frozenset({"deny", "no", "/deny", "reject", "👎"})
COMMANDS = frozenset({"/pending", "/revoke", "/start", "/help"})
HELP_TEXT = (
    "Airlock: reply to a prompt with your 6-digit code to approve it, or 'deny'. "
    "/pending lists waiting requests; /revoke ends every active session."
)
IGNORED_AUDIT_INTERVAL = 60.0
BARE_CODE_SETTLE = 120.0
"""How long a request must have waited alone for a bare code to approve it."""


class ReplyHandler:
    def __init__(
        self, approvals: ApprovalService, channels: Channels, audit: Auditor, clock: Clock
    ) -> None:
        self._approvals = approvals
        self._channels = channels
        self._audit = audit
        self._clock = clock
        self._ignored = AuditThrottle(clock, IGNORED_AUDIT_INTERVAL)

    async def handle(self, notifier: str, reply: Reply) -> None:
        if not reply.known_sender:
            await self._ignore(notifier, reply)
            return
        text = reply.text.strip()
        command = text.split(maxsplit=1)[0].lower().partition("@")[0] if text else ""
        if command in COMMANDS:
            await self._command(notifier, command)
            return
        request_id = self._channels.request_for(notifier, reply.in_reply_to)
        if request_id is None:
            # A reply to some other message (an old prompt, one from before a restart) is
            # not a bare code: it must not approve whatever happens to be pending now.
            # A bare one only when that request has waited alone for a while: see
            # ``sole_pending`` (an agent must not swap what a typed code approves).
            sole = None if reply.in_reply_to else self._approvals.sole_pending(BARE_CODE_SETTLE)
            if sole is None:
                listing = ", ".join(p.code for p in self._approvals.pending()) or "none"
                question = (
                    "That message is not an open prompt." if reply.in_reply_to else "Which request?"
                )
                await self._channels.tell(
                    notifier, Notice(text=f"{question} Reply to its prompt. Pending: {listing}.")
                )
                return
            request_id = sole
        try:
            if text.lower() in DENY_WORDS:
                await self._approvals.deny(request_id, peer=None, channel=notifier)
                return
            match = TOTP_REPLY.match(text)
            if match is None:
                await self._channels.tell(
                    notifier,
                    Notice(
                        text="Reply with your 6-digit code to approve, or 'deny'.",
                        request_id=request_id,
                    ),
                )
                return
            code = match.group(1) + match.group(2)
            await self._approvals.approve(request_id, code, peer=None, channel=notifier)
        except (InvalidCode, ApprovalsLocked, NotPending, NotFound) as exc:
            await self._channels.tell(
                notifier, Notice(text=f"Not approved: {exc.message}", request_id=request_id)
            )

    async def _ignore(self, notifier: str, reply: Reply) -> None:
        """Audit a stranger's message: the first from each sender, then at most one a
        minute with the count in between, so a stranger cannot flood the audit log."""
        key = (notifier, reply.sender[:80])
        skipped = self._ignored.admit(key)
        if skipped is None:
            return
        await self._audit.append(
            "reply_ignored",
            notifier=notifier,
            sender=key[1],
            why="not the configured sender",
            ignored_since_last=skipped,
        )

    async def _command(self, notifier: str, command: str) -> None:
        """The quick commands a person sends from the phone: /pending, /revoke, /help."""
        if command == "/pending":
            now = self._clock.now()
            rows = [
                f"{p.code}: {', '.join(p.services)} ({p.access}), uid {p.requester_uid}, "
                f"{max(0, int(p.expires_at.timestamp() - now)) // 60} min left"
                for p in self._approvals.pending()
            ]
            text = "Pending: " + "; ".join(rows) if rows else "Nothing is pending."
        elif command == "/revoke":
            revoked, cancelled = await self._approvals.revoke_everything(channel=notifier)
            text = f"Revoked {len(revoked)} session(s)."
            if cancelled:
                text += f" Cancelled {len(cancelled)} approved request(s) not yet collected."
        else:
            text = HELP_TEXT
        await self._channels.tell(notifier, Notice(text=text))
