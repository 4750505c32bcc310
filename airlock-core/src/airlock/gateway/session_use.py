"""What the gateway keeps of each session between its calls: its use count, and the
facts the policies see of it."""

from __future__ import annotations

from collections import Counter

from airlock.framework.policies import SessionFacts
from airlock.models import Access
from airlock.state.store import Session, StateStore

__all__ = ["SessionFactsCache", "UseCounter", "session_facts"]

FACTS_KEPT = 1024


class UseCounter:
    """Sessions' use counts, kept in memory and written to the store in batches.

    The audit log is the durable record of every operation; the count shown by
    ``airlock sessions`` may lag by one housekeeping interval. Writing it per operation
    would cost an fsync on every call.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._totals: dict[str, int] = {}
        self._unsaved: Counter[str] = Counter()

    def add(self, session: Session) -> int:
        """Count one use; the session's count so far (stored plus not yet saved)."""
        total = self._totals.get(session.id, session.use_count) + 1
        self._totals[session.id] = total
        self._unsaved[session.id] += 1
        return total

    def flush(self) -> None:
        if not self._unsaved:
            return
        unsaved, self._unsaved = self._unsaved, Counter()
        with self._store.transaction():
            for session_id, uses in unsaved.items():
                self._store.increment_use(session_id, uses)


def session_facts(session: Session) -> SessionFacts:
    """What the policies see of *session*."""
    return SessionFacts(
        id=session.id,
        services=session.services,
        access=Access(session.access),
        uid=session.uid,
        sensitive=session.sensitive,
        operation_hash=session.operation_hash,
    )


class SessionFactsCache:
    """:func:`session_facts`, made once for each session object the sessions' cache
    hands out (it hands out a new object whenever the session may have changed), not on
    every call: a frozen dataclass is slow to make."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[Session, SessionFacts]] = {}

    def of(self, session: Session) -> SessionFacts:
        found = self._made.get(session.id)
        if found is not None and found[0] is session:
            return found[1]
        if len(self._made) >= FACTS_KEPT:
            self._made.clear()
        facts = session_facts(session)
        self._made[session.id] = (session, facts)
        return facts
