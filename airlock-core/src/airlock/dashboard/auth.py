"""Logging in to the dashboard with a TOTP code, and the browser's session.

A login is the person proving themselves with a code, exactly like an approval: the code
goes through the one audited check (``CodeChecker.check``, channel ``dashboard``,
purpose ``login``), so it is accepted once and a wrong one counts toward the lockout. The
browser then holds a random cookie token; the state store keeps only its SHA-256, as a
session with access ``person`` that ``airlock sessions`` lists and ``airlock revoke``
ends. The token has its own prefix, so it can never pass as an agent's session token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections import deque
from dataclasses import dataclass

import structlog

from airlock.daemon.runtime import Runtime
from airlock.errors import RateLimited
from airlock.models import Access
from airlock.security.code_checks import CodePurpose
from airlock.security.sessions import hash_token
from airlock.state.store import Session

log = structlog.get_logger("airlock.dashboard")

COOKIE = "airlock_dashboard"
LOGIN_COOKIE = "airlock_login"
PERSON_ACCESS = Access.PERSON
SERVICES = ("dashboard",)
TOKEN_PREFIX = "ald_"  # noqa: S105 - a prefix, not a secret
# Login attempts per local user (per address for a client on another machine) per
# minute, before the codes are even checked. The TOTP lockout bounds guessing overall;
# this keeps one user from burning through it, however many loopback addresses
# (127.0.0.0/8) it sends from.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW = 60.0
TRACKED = 1000


@dataclass(frozen=True)
class Login:
    session: Session
    token: str


class DashboardAuth:
    def __init__(self, runtime: Runtime, ttl: int) -> None:
        self._rt = runtime
        self._ttl = ttl
        # Forms carry HMAC(session id); the key lives only in this process, so a form
        # from before a restart asks to be loaded again.
        self._csrf_key = secrets.token_bytes(32)
        self._attempts: dict[str, deque[float]] = {}

    def check_rate(self, remote: str, uid: int) -> None:
        now = self._rt.clock.now()
        who = f"uid {uid}" if _loopback(remote) else remote
        if who not in self._attempts and len(self._attempts) >= TRACKED:
            # Forget who tried nothing in the last minute, rather than grow forever.
            self._attempts = {
                k: v for k, v in self._attempts.items() if v and v[-1] > now - LOGIN_WINDOW
            }
        recent = self._attempts.setdefault(who, deque())
        while recent and recent[0] <= now - LOGIN_WINDOW:
            recent.popleft()
        if len(recent) >= LOGIN_ATTEMPTS:
            raise RateLimited(
                "too many login attempts from this address", hint="wait a minute, then try again"
            )
        recent.append(now)

    async def login(self, code: str, remote: str, uid: int) -> Login:
        """A new person session for a good code, held by *uid* (the browser's user, see
        ``client_uid``); raises ``InvalidCode`` and friends."""
        self.check_rate(remote, uid)
        # The secret may be replaced meanwhile: its replacement ends the logins once
        # this one is saved, or this code is checked against the new secret.
        async with self._rt.logins:
            self._rt.refresh_totp()
            await self._rt.codes.check(
                code,
                channel="dashboard",
                purpose=CodePurpose("dashboard_login"),
                actor={"remote": remote},
            )
            now = self._rt.clock.now()
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            session = Session(
                id="ses_" + secrets.token_urlsafe(9),
                token_hash=hash_token(token),
                services=SERVICES,
                access=PERSON_ACCESS,
                uid=uid,
                created_at=now,
                expires_at=now + self._ttl,
            )
            # Recorded first: if the record cannot be written, no session exists.
            await self._rt.audit.append(
                "session_issued",
                session=session.id,
                services=list(SERVICES),
                access=PERSON_ACCESS,
                channel="dashboard",
                remote=remote,
                expires_at=session.expires_at,
            )
            self._rt.store.insert_session(session)
        return Login(session, token)

    def session_of(self, token: str | None, uid: int) -> Session | None:
        """The active person session of a cookie, when the browser presenting it runs as
        *uid*, the user who logged in; None otherwise."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        session = self._rt.store.find_session_by_token_hash(hash_token(token))
        if session is None or session.access != PERSON_ACCESS:
            return None
        if not session.is_active(self._rt.clock.now()):
            return None
        if session.uid != uid:
            # Browsers hand a host's cookies to every port on it: another local user's
            # web server may hold this one. Theirs to present, not to use.
            log.warning("dashboard_cookie_of_another_user", session=session.id)
            return None
        return session

    def session_of_id(self, session_id: str) -> bool:
        session = self._rt.store.get_session(session_id)
        return session is not None and session.is_active(self._rt.clock.now())

    async def logout(self, session: Session) -> None:
        """End *session*, once its record is on disk (no record, no change)."""
        await self._rt.audit.append(
            "session_revoked", session=session.id, owner_uid=session.uid, channel="dashboard"
        )
        self._rt.store.revoke_session(session.id, at=self._rt.clock.now())

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session_id: str, given: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session_id), given)


def _loopback(remote: str) -> bool:
    """Whether *remote* is this machine (its program's uid is then known)."""
    try:
        return ipaddress.ip_address(remote.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False
