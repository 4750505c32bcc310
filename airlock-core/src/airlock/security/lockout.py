"""Bounded guessing: wrong codes counted per window, approvals locked, lockouts doubled.

``approvals.max_failures`` wrong codes within ``approvals.failure_window`` lock approvals
for ``approvals.lockout``; while locked, every code is refused unchecked. A lockout that
starts within a day of the last one's end lasts twice that one, up to a day
(:func:`lockout_for`): with a fixed lockout a guesser kept up ``max_failures`` guesses a
lockout, day and night (at the loosest settings ~2,900 a day, ~1 % a day to hit one of
the 3 codes a 6-digit window accepts); doubling leaves about one lockout's worth a day.
A correct code does not end the doubling: an agent can have the person approve
something whenever it likes, and would then be back to short lockouts. A person who
mistypes now and then is locked out for ``approvals.lockout`` each time a day apart.
Failures, the lock and the lockouts in a row live in the state database, inside the
caller's transaction (:class:`airlock.security.totp.TotpVerifier`), so a restart changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from airlock.errors import ApprovalsLocked, InvalidCode
from airlock.settings.config import ApprovalsConfig
from airlock.settings.durations import format_duration
from airlock.state.store import StateStore

__all__ = ["LOCKOUT_CEILING", "LOCKOUT_MEMORY", "LockState", "Lockout", "lockout_for"]

LOCKOUT_CEILING = 86_400
"""Seconds the doubling of lockouts in a row stops at (a longer configured one stays)."""
LOCKOUT_MEMORY = 86_400
"""Seconds after a lockout's end within which the next lockout counts as in a row."""


def lockout_for(configured: int, earlier: int) -> int:
    """Seconds a lockout lasts after *earlier* lockouts in a row: *configured*, doubled
    for each, at most ``LOCKOUT_CEILING`` (or *configured*, if that is longer)."""
    return min(configured << min(max(earlier, 0), 32), max(LOCKOUT_CEILING, configured))


@dataclass(frozen=True)
class LockState:
    """Whether approvals are locked, and how close they are to it."""

    locked: bool
    locked_until: float | None
    recent_failures: int
    attempts_left: int


class Lockout:
    """The lock over approval codes, kept in *store* by the rules of *approvals*."""

    def __init__(self, store: StateStore, approvals: ApprovalsConfig) -> None:
        self._store = store
        self._approvals = approvals

    def state(self, now: float) -> LockState:
        until = self._store.locked_until()
        locked = until is not None and now < until
        failures = self._store.count_failures_since(now - self._approvals.failure_window)
        left = 0 if locked else max(self._approvals.max_failures - failures, 0)
        return LockState(locked, until if locked else None, failures, left)

    def refusal(self, now: float) -> ApprovalsLocked | None:
        """What a code gets while approvals are locked, unchecked; None once open (a lock
        that has lifted stays on record: the next lockout within a day of its end doubles
        it)."""
        until = self._store.locked_until()
        if until is not None and now < until:
            wait = format_duration(max(1, int(until - now + 0.999)))
            return ApprovalsLocked(
                f"approvals are locked after too many wrong codes; try again in {wait}",
                hint="if you did not send those codes, someone may be guessing: revoke sessions",
            )
        return None

    def failed(self, error: InvalidCode, now: float) -> InvalidCode:
        """Count a wrong code; *error* said again with how many attempts are left, or that
        approvals are now locked, and for how long."""
        self._store.add_failure(now)
        window_start = now - self._approvals.failure_window
        self._store.clear_failures(before=window_start)
        failures = self._store.count_failures_since(window_start)
        if failures >= self._approvals.max_failures:
            last_end, in_a_row = self._store.last_lockout()
            recent = last_end is not None and now - last_end < LOCKOUT_MEMORY
            earlier = in_a_row if recent else 0
            seconds = lockout_for(self._approvals.lockout, earlier)
            self._store.lock(now + seconds, earlier + 1)
            self._store.clear_failures()
            lockout = format_duration(seconds)
            again = f" (lockout {earlier + 1} in a row: each lasts twice the last)"
            return InvalidCode(
                f"{error.message}; too many wrong codes, approvals are locked for {lockout}"
                + (again if earlier else ""),
                hint=f"wait {lockout}, then approve again; if you did not send those codes, "
                "someone may be guessing: stop the agent and revoke its sessions",
            )
        left = self._approvals.max_failures - failures
        plural = "s" if left != 1 else ""
        return InvalidCode(
            f"{error.message} ({left} attempt{plural} left before approvals lock)",
            hint=error.hint,
        )
