"""Sessions: what an approved request turns into (see docs/security.md).

A session token is ``alk_`` + base64url of 32 random bytes. It is shown to the requester
once and never stored: the store keeps its SHA-256, and a token is found by hashing it
and looking the hash up, so the lookup cannot leak the token through timing. A session
is bound to the uid that asked for it; another uid presenting the token is refused
(403) even though the token is valid.

TTLs are written like ``90s``, ``60m`` or ``8h``. A TTL longer than ``sessions.max_ttl``
is *clamped* to the cap rather than refused: an agent asking for "a day" should get the
longest session the person allows, and the approval prompt shows the TTL actually
granted, so nothing is hidden from the person.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from airlock.common.clock import Clock
from airlock.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from airlock.models import Access
from airlock.settings.config import SessionsConfig
from airlock.settings.durations import parse_duration
from airlock.state.store import Session, StateStore

__all__ = ["TOKEN_PREFIX", "Session", "SessionManager", "hash_token", "new_token"]

TOKEN_PREFIX = "alk_"  # noqa: S105 - a prefix, not a secret
_TOKEN_BYTES = 32
_TOKEN_PATTERN = re.compile(r"^alk_[A-Za-z0-9_-]{43}$")
ACCESS_LEVELS = (Access.READ, Access.WRITE, Access.SPEND)  # an agent's; not Access.PERSON
_CACHE_LIMIT = 10_000


def new_token() -> str:
    """A fresh session token: ``alk_`` + 43 base64url characters (256 random bits)."""
    raw = secrets.token_bytes(_TOKEN_BYTES)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionManager:
    """Creates, authenticates, lists, revokes and expires sessions.

    Times come from the injected clock; the store holds the state, so sessions survive
    a daemon restart and a revocation is seen by the very next call.
    """

    def __init__(self, store: StateStore, config: SessionsConfig, clock: Clock) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._cache: dict[str, tuple[Session, int]] = {}

    def ttl_seconds(self, ttl: str | int | None) -> int:
        """The TTL to grant: the default when None, clamped to ``sessions.max_ttl``."""
        cap = self._config.max_ttl
        if ttl is None:
            return min(self._config.default_ttl, cap)
        return min(parse_duration(ttl, field="ttl"), cap)

    def create(
        self,
        services: Iterable[str],
        access: str,
        uid: int,
        *,
        request_id: str | None = None,
        ttl: str | int | None = None,
        sensitive: bool = False,
    ) -> tuple[Session, str]:
        """Open a session; returns it and its token (the only time the token exists)."""
        session, token = self.prepare(
            services, access, uid, request_id=request_id, ttl=ttl, sensitive=sensitive
        )
        self._store.insert_session(session)
        return session, token

    def prepare(
        self,
        services: Iterable[str],
        access: str,
        uid: int,
        *,
        request_id: str | None = None,
        ttl: str | int | None = None,
        sensitive: bool = False,
        starts_at: float | None = None,
        operation_hash: str | None = None,
    ) -> tuple[Session, str]:
        """A session and its token, not stored yet: the caller stores it once its
        ``session_issued`` record is durable. Its TTL counts from *starts_at* (the
        approval) when given, else from now."""
        names = tuple(services)
        if not names:
            raise InvalidInput("a session needs at least one service", field="services")
        if access not in ACCESS_LEVELS:
            raise InvalidInput(
                f"access must be read, write or spend, not {access[:10]!r}", field="access"
            )
        now = self._clock.now()
        token = new_token()
        session = Session(
            id="ses_" + secrets.token_urlsafe(9),
            token_hash=hash_token(token),
            services=names,
            access=Access(access),
            uid=uid,
            created_at=now,
            expires_at=(now if starts_at is None else starts_at) + self.ttl_seconds(ttl),
            request_id=request_id,
            sensitive=sensitive,
            operation_hash=operation_hash,
        )
        return session, token

    def authenticate(self, token: str, uid: int) -> Session:
        """The active session of *token* for *uid*.

        Raises ``Unauthenticated`` for a malformed, unknown, expired or revoked token and
        ``Forbidden`` when the token belongs to another uid.
        """
        if not _TOKEN_PATTERN.match(token):
            raise Unauthenticated(
                "not an Airlock session token", hint="request access to get a session"
            )
        digest = hash_token(token)
        session = self._lookup(digest)
        if session is None or not hmac.compare_digest(session.token_hash, digest):
            raise Unauthenticated("unknown session token", hint="request access again")
        if session.revoked_at is not None:
            raise Unauthenticated("session revoked", hint="request access again")
        if self._clock.now() >= session.expires_at:
            raise Unauthenticated("session expired", hint="request access again")
        if session.uid != uid:
            raise Forbidden("this session belongs to another user")
        if session.access is Access.PERSON:  # a dashboard login runs no operation
            raise Unauthenticated("not an agent's session token", hint="request access")
        return session

    def _lookup(self, digest: str) -> Session | None:
        """The session stored under *digest*, from a cache while no revocation happened.

        Every operation authenticates; reading SQLite each time cost ~0.3 ms of daemon
        time under load. Revocations (and expiries brought forward by a lower
        ``max_ttl``) go through this process's store, which counts them, so a revoked
        session is never served from the cache; expiry is checked by the
        caller on every call.
        """
        generation = self._store.revocations
        cached = self._cache.get(digest)
        if cached is not None and cached[1] == generation:
            return cached[0]
        session = self._store.find_session_by_token_hash(digest)
        if session is not None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (session, generation)
        return session

    def get(self, session_id: str, uid: int) -> Session:
        session = self._store.get_session(session_id)
        if session is None:
            raise NotFound(f"no session {session_id[:40]!r}", hint="see `airlock sessions`")
        if session.uid != uid:
            raise Forbidden("this session belongs to another user")
        return session

    def revoke(self, session_id: str, uid: int) -> Session:
        """Revoke one of *uid*'s sessions (revoking twice is harmless)."""
        session = self.get(session_id, uid)
        now = self._clock.now()
        if self._store.revoke_session(session_id, at=now):
            return self._store.get_session(session_id) or session
        return session

    def revoke_all(self, uid: int) -> list[Session]:
        """Revoke every active session of *uid*; returns the ones revoked now."""
        now = self._clock.now()
        revoked: list[Session] = []
        for session in self._store.list_sessions(uid=uid, active_at=now):
            if self._store.revoke_session(session.id, at=now):
                revoked.append(self._store.get_session(session.id) or session)
        return revoked

    def list(self, uid: int | None) -> list[Session]:
        """The active sessions of *uid* (of every uid with None), oldest first."""
        return self._store.list_sessions(uid=uid, active_at=self._clock.now())

    def newly_expired(self) -> builtins.list[Session]:
        """Sessions that reached their expiry and were not reported yet.

        The daemon's sweep writes a ``session_expired`` audit event for each, then notes
        it (:meth:`note_expiry`), so one whose record failed is reported at the next
        sweep; authentication does not depend on it (expiry is checked on every call).
        """
        return self._store.newly_expired(self._clock.now())

    def note_expiry(self, session_id: str) -> None:
        self._store.note_expiry(session_id)
