"""The audit directory's size budget, kept by the daemon's housekeeping, and told.

Deleting old audit records, or refusing to, is something the person must hear of at once
and not only in the log they may not read: an agent with a session can make records fast
to push old ones out (its own misdeeds among them), and a directory that stays over its
budget will fill the disk, after which nothing can be recorded and so nothing is served.
So each deletion, and each new reason the directory stays over budget (records younger
than ``audit.keep_for``, a file that does not verify), goes to every approval channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airlock.framework.notifiers import Notice

if TYPE_CHECKING:
    from airlock.daemon.runtime import Runtime

__all__ = ["keep_audit_budget"]


async def keep_audit_budget(rt: Runtime) -> None:
    budget = rt.config.audit
    before = rt.audit.drop_refused
    dropped = await rt.audit.drop_over_budget(budget.max_bytes, keep_for=budget.keep_for)
    size = _mib(budget.max_bytes)
    if dropped:
        _tell(
            rt,
            f"Airlock: the audit log reached its size budget (audit.max_bytes, {size}): its "
            f"{len(dropped)} oldest file(s) were verified and deleted (audit_files_dropped). "
            "If that came sooner than you expected, an agent may be making records to push "
            "old ones out: see airlock audit.",
        )
    refused = rt.audit.drop_refused
    if refused and refused != before:
        _tell(
            rt,
            f"Airlock: the audit log is over its size budget (audit.max_bytes, {size}) and "
            f"no more old records are deleted: {refused}. Free space or raise "
            "audit.max_bytes; if an agent is making records fast, revoke it "
            "(airlock revoke --all). A full disk stops Airlock serving.",
        )


def _tell(rt: Runtime, text: str) -> None:
    rt.in_background(rt.channels.notify_all(Notice(text=text)))


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"
