"""Repeated identical refusals become one audit record per interval, with a count.

An agent looping on a refused call (rate-limited, out of scope, a write without its
approval), or a stranger writing to a phone channel, would otherwise append a fsynced
record per attempt. The first refusal of each key is recorded; the same key again within
the interval is only counted, and the next record carries how many were left out.
A clock set back starts a new interval.
"""

from __future__ import annotations

from collections.abc import Hashable

from airlock.common.clock import Clock

DEFAULT_INTERVAL = 60.0
_MAX_KEYS = 1000


class AuditThrottle:
    def __init__(self, clock: Clock, interval: float = DEFAULT_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._seen: dict[Hashable, tuple[float, int]] = {}

    def admit(self, key: Hashable) -> int | None:
        """How many refusals of *key* were left out before this one, if this one is to
        be recorded; None if it is only counted."""
        now = self._clock.now()
        last, skipped = self._seen.get(key, (float("-inf"), 0))
        # A clock set back makes the last record look in the future: that is no
        # interval, and refusals must not go unrecorded until the clock gets there.
        if 0 <= now - last < self._interval:
            self._seen[key] = (last, skipped + 1)
            return None
        if len(self._seen) >= _MAX_KEYS:
            self._seen.clear()
        self._seen[key] = (now, 0)
        return skipped
