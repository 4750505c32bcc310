"""Sessions: unguessable tokens, bound to one uid, dead when expired or revoked."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.common.clock import FakeClock
from airlock.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from airlock.security.sessions import SessionManager, hash_token, new_token
from airlock.settings.config import SessionsConfig
from airlock.state.store import StateStore

OWNER, OTHER = 1000, 1001


@pytest.fixture
def sessions(store: StateStore, clock: FakeClock) -> SessionManager:
    return SessionManager(store, SessionsConfig(default_ttl=3600, max_ttl=8 * 3600), clock)


def test_a_token_is_alk_and_256_random_bits_in_base64url() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith("alk_")
        assert len(token) == 47
        raw = base64.urlsafe_b64decode(token[4:] + "=")
        assert len(raw) == 32


def test_the_store_keeps_only_the_hash_of_a_token(
    sessions: SessionManager, store: StateStore
) -> None:
    session, token = sessions.create(["gmail"], "read", OWNER)
    assert session.token_hash == hash_token(token)
    assert token not in repr(session)
    store.close()
    for path in store.path.parent.iterdir():
        assert token.encode() not in path.read_bytes()


def test_the_owner_is_let_in_with_the_approved_scope(sessions: SessionManager) -> None:
    created, token = sessions.create(["gmail", "calendar"], "read", OWNER, request_id="req_1")
    session = sessions.authenticate(token, OWNER)
    assert session.id == created.id
    assert session.services == ("gmail", "calendar")
    assert session.access == "read"
    assert session.request_id == "req_1"


def test_an_expired_token_is_refused(sessions: SessionManager, clock: FakeClock) -> None:
    _, token = sessions.create(["gmail"], "read", OWNER, ttl="90s")
    clock.advance(89)
    sessions.authenticate(token, OWNER)
    clock.advance(1)
    with pytest.raises(Unauthenticated, match="expired"):
        sessions.authenticate(token, OWNER)


def test_a_revoked_token_is_refused_on_the_next_call(sessions: SessionManager) -> None:
    session, token = sessions.create(["gmail"], "read", OWNER)
    sessions.authenticate(token, OWNER)
    sessions.revoke(session.id, OWNER)
    with pytest.raises(Unauthenticated, match="revoked"):
        sessions.authenticate(token, OWNER)


def test_a_token_presented_by_another_uid_is_forbidden(sessions: SessionManager) -> None:
    _, token = sessions.create(["gmail"], "read", OWNER)
    with pytest.raises(Forbidden) as caught:
        sessions.authenticate(token, OTHER)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "token",
    ["", "alk_", "Bearer alk_x", "alk_" + "A" * 43 + "=", "xyz_" + "A" * 43, "alk_" + "A" * 43],
)
def test_unknown_or_malformed_tokens_are_unauthenticated(
    sessions: SessionManager, token: str
) -> None:
    sessions.create(["gmail"], "read", OWNER)
    with pytest.raises(Unauthenticated) as caught:
        sessions.authenticate(token, OWNER)
    assert caught.value.status == 401


def test_sessions_survive_a_daemon_restart(
    data_dir: Path, clock: FakeClock, store: StateStore
) -> None:
    config = SessionsConfig()
    session, token = SessionManager(store, config, clock).create(["gmail"], "read", OWNER)
    store.close()
    with StateStore(data_dir / "state.db") as reopened:
        assert SessionManager(reopened, config, clock).authenticate(token, OWNER).id == session.id


def test_ttl_defaults_and_is_clamped_to_the_cap(sessions: SessionManager) -> None:
    assert sessions.ttl_seconds(None) == 3600
    assert sessions.ttl_seconds("90s") == 90
    assert sessions.ttl_seconds("8h") == 8 * 3600
    assert sessions.ttl_seconds("2d") == 8 * 3600


def test_a_session_asking_for_too_long_gets_the_cap(
    sessions: SessionManager, clock: FakeClock
) -> None:
    session, _ = sessions.create(["gmail"], "read", OWNER, ttl="30d")
    assert session.expires_at - clock.now() == 8 * 3600


def test_a_default_ttl_above_the_cap_is_clamped_too(store: StateStore, clock: FakeClock) -> None:
    manager = SessionManager(store, SessionsConfig(default_ttl=86400, max_ttl=3600), clock)
    assert manager.ttl_seconds(None) == 3600


@given(amount=st.integers(min_value=1, max_value=9_999_999), unit=st.sampled_from("smhd"))
def test_any_written_ttl_is_parsed_and_capped(amount: int, unit: str) -> None:
    size = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    manager = SessionManager(None, SessionsConfig(max_ttl=8 * 3600), FakeClock())  # type: ignore[arg-type]
    assert manager.ttl_seconds(f"{amount}{unit}") == min(amount * size, 8 * 3600)


@pytest.mark.parametrize("ttl", ["0s", "-5m", "forever", "5 weeks", "1.5h", ""])
def test_a_ttl_that_is_not_a_duration_is_bad_input(sessions: SessionManager, ttl: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sessions.create(["gmail"], "read", OWNER, ttl=ttl)
    assert caught.value.field == "ttl"


def test_a_session_needs_services_and_a_known_access_level(sessions: SessionManager) -> None:
    with pytest.raises(InvalidInput):
        sessions.create([], "read", OWNER)
    with pytest.raises(InvalidInput):
        sessions.create(["gmail"], "admin", OWNER)


def test_listing_shows_only_my_active_sessions(sessions: SessionManager, clock: FakeClock) -> None:
    mine, _ = sessions.create(["gmail"], "read", OWNER)
    sessions.create(["gmail"], "read", OWNER, ttl="60s")
    sessions.create(["gmail"], "read", OTHER)
    revoked, _ = sessions.create(["gmail"], "read", OWNER)
    sessions.revoke(revoked.id, OWNER)
    clock.advance(120)
    assert [s.id for s in sessions.list(OWNER)] == [mine.id]


def test_nobody_revokes_another_users_session(sessions: SessionManager) -> None:
    session, token = sessions.create(["gmail"], "read", OWNER)
    with pytest.raises(Forbidden):
        sessions.revoke(session.id, OTHER)
    with pytest.raises(NotFound):
        sessions.revoke("ses_unknown", OWNER)
    sessions.authenticate(token, OWNER)


def test_revoking_twice_is_harmless(sessions: SessionManager) -> None:
    session, _ = sessions.create(["gmail"], "read", OWNER)
    first = sessions.revoke(session.id, OWNER)
    second = sessions.revoke(session.id, OWNER)
    assert first.revoked_at is not None
    assert first.revoked_at == second.revoked_at


def test_revoke_all_ends_only_my_sessions(sessions: SessionManager) -> None:
    _, mine1 = sessions.create(["gmail"], "read", OWNER)
    _, mine2 = sessions.create(["calendar"], "read", OWNER)
    _, theirs = sessions.create(["gmail"], "read", OTHER)
    assert len(sessions.revoke_all(OWNER)) == 2
    for token in (mine1, mine2):
        with pytest.raises(Unauthenticated):
            sessions.authenticate(token, OWNER)
    sessions.authenticate(theirs, OTHER)
    assert sessions.revoke_all(OWNER) == []


def test_each_expiry_is_reported_once(sessions: SessionManager, clock: FakeClock) -> None:
    short, _ = sessions.create(["gmail"], "read", OWNER, ttl="60s")
    revoked, _ = sessions.create(["gmail"], "read", OWNER, ttl="60s")
    sessions.revoke(revoked.id, OWNER)
    sessions.create(["gmail"], "read", OWNER, ttl="1h")
    assert sessions.newly_expired() == []
    clock.advance(61)
    assert [s.id for s in sessions.newly_expired()] == [short.id]
    assert [s.id for s in sessions.newly_expired()] == [short.id], "until noted"
    sessions.note_expiry(short.id)
    assert sessions.newly_expired() == []
