"""The audit directory's size budget, kept by the daemon's housekeeping, and told.

Deleting old audit records, or refusing to, is something the person must hear of at once
and not only in the log they may not read: an agent with a session can make records fast
to push old ones out (its own misdeeds among them), and a directory that stays over its
budget will fill the disk, after which nothing can be recorded and so nothing is served.
So each deletion, and each new reason the directory stays over budget (records younger
than ``audit.keep_for``, or than a session's longest life when that is longer: see
:func:`kept_for`; a file that does not verify), goes to every approval channel; but
an agent that made records fast must not flood the person's phone either when its files
come of age one by one: deletions, and refusals for young records, are told at most once
an hour (:data:`NOTICE_EVERY`), what happened meanwhile with the next notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airlock.framework.notifiers import Notice
from airlock.security._audit_retention import YOUNG

if TYPE_CHECKING:
    from airlock.daemon.runtime import Runtime
    from airlock.settings.config import AirlockConfig

__all__ = ["NOTICE_EVERY", "BudgetNotices", "keep_audit_budget", "kept_for"]

NOTICE_EVERY = 3600.0
"""The least time between two notices of deletions, or of refusals for young records: a
flood's files come of age one by one, and every round would delete one and refuse the
next. What happens meanwhile is told with the next notice (deletions counted)."""


@dataclass
class BudgetNotices:
    """What the person was last told of the audit budget, and when (kept across reloads)."""

    untold: int = 0
    """Files deleted since the last notice of deletions."""
    dropped_at: float | None = None
    refusal: str | None = None
    refusal_at: float | None = None


async def keep_audit_budget(rt: Runtime) -> None:
    budget = rt.config.audit
    told = rt.budget_notices
    now = rt.clock.now()
    dropped = await rt.audit.drop_over_budget(budget.max_bytes, keep_for=kept_for(rt.config))
    size = _mib(budget.max_bytes)
    told.untold += len(dropped)
    if told.untold and _due(told.dropped_at, now):
        which = (
            f"its {told.untold} oldest file(s) were"
            if told.dropped_at is None
            else f"{told.untold} more file(s), its oldest, were"
        )
        _tell(
            rt,
            f"Airlock: the audit log reached its size budget (audit.max_bytes, {size}): "
            f"{which} verified and deleted (audit_files_dropped). If that came sooner than "
            "you expected, an agent may be making records to push old ones out: see "
            "airlock audit.",
        )
        told.untold, told.dropped_at = 0, now
    refused = rt.audit.drop_refused
    if refused and refused != told.refusal:
        again = told.refusal is not None and _young(refused) and _young(told.refusal)
        if not again or _due(told.refusal_at, now):
            _tell(
                rt,
                f"Airlock: the audit log is over its size budget (audit.max_bytes, {size}) "
                f"and no more old records are deleted: {refused}. Free space or raise "
                "audit.max_bytes; if an agent is making records fast, revoke it "
                "(airlock revoke --all). A full disk stops Airlock serving.",
            )
            told.refusal, told.refusal_at = refused, now


def kept_for(config: AirlockConfig) -> float:
    """How recent a record keeps its file: ``audit.keep_for``, or a session's longest
    life when that is longer (``sessions.max_ttl``, a dashboard login's
    ``dashboard.session_ttl``). A start after a crash replays the revocation records of
    the sessions still live (:mod:`airlock.daemon.recorded_revocations`); a flood must not
    push one out first."""
    return max(config.audit.keep_for, config.sessions.max_ttl, config.dashboard.session_ttl)


def _due(last: float | None, now: float) -> bool:
    return last is None or now - last >= NOTICE_EVERY


def _young(refused: str) -> bool:
    return refused.endswith(YOUNG)


def _tell(rt: Runtime, text: str) -> None:
    rt.in_background(rt.channels.notify_all(Notice(text=text)))


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"
