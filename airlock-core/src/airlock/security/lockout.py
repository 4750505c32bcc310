"""Bounded guessing: wrong codes counted, approvals locked, lockouts doubled.

``approvals.max_failures`` wrong codes within ``approvals.failure_window`` (counted since
the last lock lifted), or twice that many within a day, lock approvals; while locked,
every code is refused unchecked. A lockout lasts ``approvals.lockout``, doubled for each
lockout in a row, up to a day (:func:`lockout_for`); a day after the last one ended the
count goes down by one, and by one more each further day. With a fixed lockout a guesser
kept up ``max_failures`` guesses a lockout day and night (at the loosest settings ~2,900
a day, ~1 % a day to hit one of the 3 codes a 6-digit window accepts), or stayed one
short of the limit each window and was never locked at all (~2,600 a day). Now the day's
limit bounds every way of timing the guesses: a few hundred codes a month at most.

A correct code does not end the doubling: an agent can have the person approve
something whenever it likes. A person who mistypes now and then waits
``approvals.lockout``, and twice that if it happens again within a day. Failures, the
lock and the lockouts in a row live in the state database, inside the caller's
transaction (:class:`airlock.security.totp.TotpVerifier`), so a restart changes nothing.
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
"""The day: failures are counted over it as well as over ``approvals.failure_window``,
and each whole one since the last lockout ended takes one off the lockouts in a row."""
DAILY_FAILURES = 2
"""Wrong codes a day that lock approvals, in ``approvals.max_failures``."""


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
        recent, left = self._counts(now, until)
        return LockState(locked, until if locked else None, recent, 0 if locked else left)

    def _counts(self, now: float, last_end: float | None) -> tuple[int, int]:
        """Wrong codes in the window since the last lock lifted, and how many more lock."""
        since = now - self._approvals.failure_window
        if last_end is not None:
            # A second before the end: no code is checked while locked, so this takes in
            # a failure at the very moment the lock lifted and none from before it.
            since = max(since, last_end - 1)
        recent = self._store.count_failures_since(since)
        today = self._store.count_failures_since(now - LOCKOUT_MEMORY)
        limit = self._approvals.max_failures
        return recent, max(min(limit - recent, DAILY_FAILURES * limit - today), 0)

    def refusal(self, now: float) -> ApprovalsLocked | None:
        """What a code gets while approvals are locked, unchecked; None once open (a lock
        that has lifted stays on record: the next lockout's length counts from its end)."""
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
        self._store.clear_failures(before=now - max(LOCKOUT_MEMORY, self._approvals.failure_window))
        last_end, in_a_row = self._store.last_lockout()
        _, left = self._counts(now, last_end)
        if left == 0:
            days = int((now - last_end) // LOCKOUT_MEMORY) if last_end is not None else 0
            earlier = max(0, in_a_row - max(days, 0))
            seconds = lockout_for(self._approvals.lockout, earlier)
            self._store.lock(now + seconds, earlier + 1)
            lockout = format_duration(seconds)
            again = f" (lockout {earlier + 1} in a row: each lasts twice the last)"
            return InvalidCode(
                f"{error.message}; too many wrong codes, approvals are locked for {lockout}"
                + (again if earlier else ""),
                hint=f"wait {lockout}, then approve again; if you did not send those codes, "
                "someone may be guessing: stop the agent and revoke its sessions",
            )
        plural = "s" if left != 1 else ""
        return InvalidCode(
            f"{error.message} ({left} attempt{plural} left before approvals lock)",
            hint=error.hint,
        )
