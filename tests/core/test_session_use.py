"""What the gateway keeps of a session between calls: the policies' facts of it are
made again whenever the sessions' cache hands out a new object for it."""

from __future__ import annotations

import dataclasses

from airlock.gateway.session_use import SessionFactsCache
from airlock.models import Access
from airlock.state.store import Session


def _session(**changes: object) -> Session:
    base = Session(
        id="ses_a",
        token_hash="a" * 64,
        services=("mail",),
        access=Access.READ,
        uid=1000,
        created_at=0.0,
        expires_at=3600.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_same_session_object_gets_the_facts_made_for_it() -> None:
    cache = SessionFactsCache()
    session = _session()
    first = cache.of(session)
    assert cache.of(session) is first
    assert (first.id, first.services, first.access, first.uid) == (
        "ses_a",
        ("mail",),
        Access.READ,
        1000,
    )


def test_a_new_object_for_the_session_gets_facts_made_from_it() -> None:
    """Same id, new object (read again after a revocation elsewhere): never the facts
    of the object before it."""
    cache = SessionFactsCache()
    cache.of(_session())
    again = _session(services=("calendar",), operation_hash="h" * 64, sensitive=True)
    facts = cache.of(again)
    assert facts.services == ("calendar",)
    assert facts.operation_hash == "h" * 64
    assert facts.sensitive is True
