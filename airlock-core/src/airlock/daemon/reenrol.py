"""Replacing the TOTP secret through the daemon (``airlock totp reset`` without ``sudo``).

In isolated mode the person cannot write the daemon's state, and need not: two calls on
the socket replace the secret.

1. ``POST /v1/totp/reset`` with a code of the *current* secret. The code goes through the
   daemon's one audited check (purpose ``totp_reset``), so a wrong one counts towards the
   approvals lock like any other. The daemon makes a new secret and answers with its
   ``otpauth://`` URI, to this caller only. Nothing changes yet: the new secret waits in
   the daemon's memory, bound to the caller's uid, for :data:`RESET_TTL`.
2. ``POST /v1/totp/confirm`` with that reset's id and a code of the *new* secret (the
   person's app now has it). A wrong code changes nothing (:data:`CONFIRM_TRIES`, then the
   reset is dropped); a right one installs the secret: the vault is re-keyed in the
   crash-safe order of ``airlock.security.totp.replace_secret``, or, with the passphrase
   lock on, the new secret is sealed under the passphrase the daemon was unlocked with
   (the vault, keyed by the passphrase, stays as it is). A mistyped enrolment therefore
   never locks the person out: until a code of the new secret comes back, the old one
   rules.

Every step is audited (``totp_reset_started``, ``totp_reset_failed``,
``totp_reset_expired``, ``totp_enrolled``), never with the secret, and starting and
finishing are announced on every channel, so a reset the person did not make is seen on
their phone.

What the daemon never does is the *first* enrolment: with no secret there is no code to
authorise it, and anyone who reaches the socket (every agent user, in isolated mode)
could enrol their own. The first ``airlock totp setup`` is made by whoever may write the
daemon's state: the person in personal mode, root in isolated mode.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import SecretStr

from airlock.api import TotpReplaced, TotpResetStarted
from airlock.errors import InvalidCode, NotEnrolled, NotFound, NotPending
from airlock.security.code_checks import CodePurpose
from airlock.security.totp import (
    Enrolment,
    finish_pending_secret,
    load_secret,
    new_secret,
    provisioning_uri,
)

if TYPE_CHECKING:
    from airlock.common.clock import Clock
    from airlock.daemon.keeper import SecretKeeper
    from airlock.security.audit import Auditor
    from airlock.security.code_checks import CodeChecker
    from airlock.security.peers import Peer
    from airlock.settings.config import AirlockConfig
    from airlock.settings.paths import AirlockPaths
    from airlock.state.store import StateStore

RESET_TTL = 300.0
"""Seconds a started reset waits for its confirming code; then it is dropped."""
CONFIRM_TRIES = 5
"""Wrong codes of the new secret before a reset is dropped (start again with a code)."""

FIRST_ENROLMENT_HINT = (
    "the first enrolment is made by whoever may write the daemon's state: "
    "`airlock totp setup` as yourself (personal mode) or as root (isolated mode)"
)


@dataclass
class _Pending:
    id: str
    secret: SecretStr
    uid: int
    expires_at: float
    tries_left: int


class Reenrolments:
    """At most one reset waiting for its confirmation (a new start replaces it)."""

    def __init__(
        self, paths: AirlockPaths, keeper: SecretKeeper, audit: Auditor, clock: Clock
    ) -> None:
        self._paths = paths
        self._keeper = keeper
        self._audit = audit
        self._clock = clock
        self._pending: _Pending | None = None

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    async def start(
        self, code: str, peer: Peer, *, codes: CodeChecker, config: AirlockConfig, enrolled: bool
    ) -> TotpResetStarted:
        """Check a code of the current secret, then hand out a new secret (not in force)."""
        if not enrolled:
            raise NotEnrolled("no TOTP secret to replace", hint=FIRST_ENROLMENT_HINT)
        await self.expire_due()
        await codes.check(
            code, channel="terminal", purpose=CodePurpose("totp_reset"), actor=peer.audit_fields()
        )
        superseded = self._pending is not None
        secret = new_secret()
        expires = self._clock.now() + RESET_TTL
        sealed = self._keeper.opened
        await self._audit.append(
            "totp_reset_started",
            **peer.audit_fields(),
            expires_at=expires,
            sealed=sealed,
            superseded=superseded,
        )
        pending = _Pending(
            id="rst_" + secrets.token_urlsafe(12),
            secret=SecretStr(secret),
            uid=peer.uid,
            expires_at=expires,
            tries_left=CONFIRM_TRIES,
        )
        self._pending = pending
        return TotpResetStarted(
            id=pending.id,
            uri=provisioning_uri(secret, config.totp),
            expires_at=datetime.fromtimestamp(expires, UTC),
            sealed=sealed,
        )

    async def confirm(
        self, reset_id: str, code: str, peer: Peer, *, store: StateStore, config: AirlockConfig
    ) -> TotpReplaced:
        """Install the waiting secret once *code* (of the new secret) is right."""
        await self.expire_due()
        pending = self._pending
        if pending is None or pending.uid != peer.uid or pending.id != reset_id:
            raise NotFound(
                "no TOTP reset of yours is waiting for a code",
                hint=f"start again: airlock totp reset (a reset waits {int(RESET_TTL) // 60} min)",
            )
        enrolment = Enrolment(
            self._paths.totp_file,
            store,
            config.totp,
            self._clock,
            secret=pending.secret.get_secret_value(),
        )
        try:
            enrolment.check(code)
        except InvalidCode as exc:
            pending.tries_left -= 1
            if pending.tries_left <= 0:
                self._pending = None
            await self._audit.append(
                "totp_reset_failed",
                **peer.audit_fields(),
                why=exc.message,
                tries_left=pending.tries_left,
            )
            if pending.tries_left <= 0:
                raise NotPending(
                    f"{exc.message}; too many wrong codes, this reset is dropped",
                    hint="the old secret still works: start again with airlock totp reset",
                ) from None
            raise InvalidCode(
                f"{exc.message} ({pending.tries_left} tries left for this reset)",
                hint=exc.hint or "type the code your app shows for the new entry",
            ) from None
        self._pending = None
        return await self._install(enrolment, code, peer, config, store)

    async def _install(
        self,
        enrolment: Enrolment,
        code: str,
        peer: Peer,
        config: AirlockConfig,
        store: StateStore,
    ) -> TotpReplaced:
        import asyncio

        sealed = self._keeper.opened
        paths = self._paths
        if sealed:
            # Audited before the secret is saved: if the record cannot be written, nothing
            # changes. The last accepted step moves up first, so the confirming code cannot
            # also approve a request.
            await self._audit.append(
                "totp_enrolled", **peer.audit_fields(), replaced=True, via="daemon", sealed=True
            )
            with store.transaction():
                store.advance_last_step(enrolment.check(code))
            await asyncio.to_thread(self._keeper.reseal, enrolment.secret)
            return TotpReplaced(replaced=True, sealed=True, vault_rekeyed=False)
        finish_pending_secret(paths.totp_file, vault_follows(paths))
        old = load_secret(paths.totp_file)
        rekey = vault_rekey(paths, old)
        await self._audit.append(
            "totp_enrolled", **peer.audit_fields(), replaced=True, via="daemon", sealed=False
        )
        enrolment.confirm(code, rekey=rekey)
        return TotpReplaced(replaced=True, sealed=False, vault_rekeyed=rekey is not None)

    async def expire_due(self) -> None:
        """Drop a reset past its deadline (by the clock, whether or not anyone asks)."""
        pending = self._pending
        if pending is None or self._clock.now() < pending.expires_at:
            return
        self._pending = None
        await self._audit.append("totp_reset_expired", uid=pending.uid)


def vault_follows(paths: AirlockPaths) -> Callable[[str], bool]:
    """Whether the vault is (already) keyed by a given TOTP secret (without the passphrase
    lock the vault is always keyed by the TOTP secret)."""
    from airlock.security.vault import TotpKey, Vault

    def follows(secret: str) -> bool:
        if not paths.vault_file.exists():
            return True
        return Vault(paths.vault_file, TotpKey(secret)).opens_with(TotpKey(secret))

    return follows


def vault_rekey(paths: AirlockPaths, old: str) -> Callable[[str], None] | None:
    """What re-keys the vault from the secret *old* to a new one (None: nothing to re-key)."""
    from airlock.security.vault import TotpKey, Vault

    if not paths.vault_file.exists():
        return None
    vault = Vault(paths.vault_file, TotpKey(old))

    def rekey(secret: str) -> None:
        vault.rekey(TotpKey(secret))

    return rekey
