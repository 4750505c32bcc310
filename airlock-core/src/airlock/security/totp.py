"""TOTP enrolment and verification (RFC 6238; see docs/security.md).

Verification is SHA1 with the digits and period of ``TotpConfig``, accepting the
current time step and one step either side (phones drift). On top of RFC 6238 it
enforces what turns a code into an approval of one request:

* **once only** (RFC 6238 §5.2): a code is accepted only if its time step is strictly
  newer than the last accepted step, kept in the state store so it holds across
  restarts. A code for an older step is refused even if it was never used, because a
  newer one already was.
* **bounded guessing** (:mod:`.lockout`): wrong codes (including codes older than the
  last accepted one) count toward locking approvals; while locked, every code is refused
  without being checked, a correct one too, so guessing gains nothing. A correct code
  does not wipe earlier failures: the limit is on wrong codes per window, whoever sends
  the right ones in between. Re-sending the *last accepted* code
  (typically the one just typed to enrol, or to approve the previous request) is
  refused without counting: it is not a guess, and it approves nothing.

Codes are compared with ``hmac.compare_digest`` against every candidate step, without
stopping at the first match. Time comes from an injected ``Clock``.

The secret lives in ``totp.key`` (0600, written atomically) and is saved only after
the person proves their app has it by typing a correct code. Replacing it (re-enrolment)
must re-key the vault, whose default key derives from this secret; see
:func:`replace_secret` for the crash-safe order.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import io
import os
import secrets
import unicodedata
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import pyotp
from pydantic import SecretStr

from airlock.common.clock import Clock
from airlock.common.files import (
    NotAPlainFile,
    atomic_write_private,
    ensure_private_dir,
    fsync_dir,
    read_plain_file,
)
from airlock.errors import (
    AirlockError,
    CodeAlreadyUsed,
    InvalidCode,
    NotEnrolled,
)
from airlock.security.lockout import Lockout, LockState
from airlock.settings.config import ApprovalsConfig, TotpConfig
from airlock.settings.durations import format_duration
from airlock.state.store import StateStore

__all__ = [
    "Enrolment",
    "LockState",
    "TotpVerifier",
    "finish_pending_secret",
    "load_secret",
    "new_secret",
    "pending_secret_file",
    "provisioning_uri",
    "qr_text",
    "replace_secret",
    "save_secret",
]

_SECRET_BYTES = 20  # 160 bits, RFC 4226's recommended length; 32 base32 characters
_MAX_CODE_CHARS = 16


def new_secret() -> str:
    """A fresh random secret in base32, as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, config: TotpConfig) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans.

    Built here rather than with pyotp's ``provisioning_uri`` because pyotp leaves ``/``
    unescaped in the label; issuer and account are fully percent-encoded (``:`` too, as
    it separates them in the label).
    """
    label = quote(config.issuer, safe="") + ":" + quote(config.account, safe="")
    params: dict[str, str | int] = {"secret": secret, "issuer": config.issuer}
    params["algorithm"] = "SHA1"
    params["digits"] = config.digits
    params["period"] = config.period
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"


def qr_text(uri: str) -> str:
    """The URI as a QR code drawn with Unicode blocks, for a terminal."""
    import segno

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def load_secret(path: Path) -> str:
    """The enrolled secret; ``NotEnrolled`` when there is none yet."""
    try:
        text = read_plain_file(path, 4096).decode("ascii").strip()
    except FileNotFoundError:
        raise NotEnrolled() from None
    except (NotAPlainFile, UnicodeDecodeError):
        raise AirlockError(
            f"{path} is not a plain file of a TOTP secret (a link?): not using it",
            hint="check what put it there; enrol again with `airlock totp setup`",
        ) from None
    if not text:
        raise NotEnrolled(f"{path} is empty")
    return text


def save_secret(path: Path, secret: str) -> None:
    ensure_private_dir(path.parent)
    atomic_write_private(path, secret.encode("ascii") + b"\n")


def pending_secret_file(path: Path) -> Path:
    """Where a new secret waits while the vault is re-keyed to it."""
    return path.with_name(path.name + ".new")


def replace_secret(path: Path, secret: str, rekey: Callable[[str], None]) -> None:
    """Install a new secret and re-key what depends on it, surviving a crash at any point.

    Order: write the new secret to ``totp.key.new``, call ``rekey(secret)`` (which must
    replace the vault atomically), then rename ``totp.key.new`` over ``totp.key``. After
    a crash, :func:`finish_pending_secret` completes or abandons the change.
    """
    pending = pending_secret_file(path)
    save_secret(pending, secret)
    rekey(secret)
    os.replace(pending, path)
    fsync_dir(path.parent)


def finish_pending_secret(path: Path, opens_with: Callable[[str], bool]) -> str | None:
    """Complete or abandon a secret replacement interrupted by a crash.

    If ``totp.key.new`` exists and ``opens_with(new_secret)`` says the vault already
    uses it, the rename is finished; otherwise the pending file is removed (the old
    secret still rules). Returns the secret now in force, or None if nothing was pending.
    """
    pending = pending_secret_file(path)
    try:
        candidate = load_secret(pending)
    except NotEnrolled:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
        return None
    if opens_with(candidate):
        os.replace(pending, path)
        return candidate
    pending.unlink()
    return load_secret(path)


def _normalise(code: str) -> str | None:
    """The digits of *code* (spaces and dashes allowed), or None if it is not a code."""
    if len(code) > _MAX_CODE_CHARS:
        return None
    cleaned = code.replace(" ", "").replace("-", "").strip()
    if not cleaned.isdecimal():  # decimal digits of any script: not ², not ①
        return None
    # A phone keyboard may type the person's code in its own digits (Arabic-Indic,
    # full width): the same code, not a wrong one that counts toward the lockout.
    return "".join(str(unicodedata.decimal(digit)) for digit in cleaned)


def _matching_steps(totp: pyotp.TOTP, code: str, step: int) -> list[int]:
    """The candidate steps (``step`` ± 1) whose code equals *code*, compared in constant time."""
    matches: list[int] = []
    given = code.encode("ascii")
    for candidate in (step - 1, step, step + 1):
        expected = totp.generate_otp(candidate).encode("ascii")
        if hmac.compare_digest(given, expected):
            matches.append(candidate)
    return matches


class TotpVerifier:
    """Checks approval codes against the enrolled secret and the store's replay state."""

    def __init__(
        self,
        store: StateStore,
        secret: str | None,
        config: TotpConfig,
        approvals: ApprovalsConfig,
        clock: Clock,
    ) -> None:
        self._store = store
        self._secret = SecretStr(secret) if secret else None
        self._config = config
        self._lockout = Lockout(store, approvals)
        self._clock = clock

    def __repr__(self) -> str:
        return f"TotpVerifier(enrolled={self.enrolled})"

    @property
    def enrolled(self) -> bool:
        return self._secret is not None

    def set_secret(self, secret: str | None) -> None:
        """Use a new secret (after ``airlock totp setup`` or ``reset``)."""
        self._secret = SecretStr(secret) if secret else None

    def _totp(self, secret: SecretStr) -> pyotp.TOTP:
        return pyotp.TOTP(
            secret.get_secret_value(), digits=self._config.digits, interval=self._config.period
        )

    def lock_state(self) -> LockState:
        return self._lockout.state(self._clock.now())

    def verify(self, code: str) -> int:
        """Accept *code* once: returns its time step, or raises.

        ``NotEnrolled`` without a secret; ``ApprovalsLocked`` while locked (the code is
        not even looked at); ``CodeAlreadyUsed`` for the last accepted code sent again
        (not counted); ``InvalidCode`` for a wrong, malformed or older code (each counts
        as a failure and may start the lock).
        """
        if self._secret is None:
            raise NotEnrolled()
        with self._store.transaction():
            now = self._clock.now()
            locked_error = self._lockout.refusal(now)
            if locked_error is None:
                step, failure = self._check(self._secret, code, now)
                if failure is not None and not isinstance(failure, CodeAlreadyUsed):
                    failure = self._lockout.failed(failure, now)
        if locked_error is not None:
            raise locked_error
        if failure is not None:
            raise failure
        return step

    def _check(self, secret: SecretStr, code: str, now: float) -> tuple[int, InvalidCode | None]:
        digits = _normalise(code)
        if digits is None or len(digits) != self._config.digits:
            return -1, InvalidCode(
                f"not a {self._config.digits}-digit code", hint="send the code your app shows"
            )
        step = int(now // self._config.period)
        matches = _matching_steps(self._totp(secret), digits, step)
        if not matches:
            return -1, InvalidCode("wrong code", hint="check the clock of your phone and try again")
        newest = max(matches)
        if self._store.advance_last_step(newest):
            return newest, None
        if self._store.last_step() in matches:
            return -1, CodeAlreadyUsed(
                "that code was already used: wait for the next code",
                hint="your app shows a new code every "
                f"{format_duration(self._config.period)}; send that one",
            )
        return -1, InvalidCode(
            "code older than the last accepted code",
            hint="wait for the next code from your app and send that",
        )


class Enrolment:
    """One enrolment attempt: a new secret, its URI and QR code, saved only once confirmed.

    ``confirm(code)`` checks the code against the *new* secret (same ±1 step rule),
    moves the last accepted step up to the code's step (so the enrolment code cannot also
    approve a request), and then saves the secret. A wrong code raises ``InvalidCode``
    and changes nothing; it does not count towards the lockout, because whoever runs
    enrolment already holds the secret.
    """

    def __init__(
        self,
        totp_file: Path,
        store: StateStore,
        config: TotpConfig,
        clock: Clock,
        *,
        secret: str | None = None,
    ) -> None:
        self._totp_file = totp_file
        self._store = store
        self._config = config
        self._clock = clock
        self._secret = SecretStr(secret or new_secret())

    def __repr__(self) -> str:
        return f"Enrolment(totp_file={str(self._totp_file)!r})"

    @property
    def secret(self) -> str:
        return self._secret.get_secret_value()

    @property
    def uri(self) -> str:
        return provisioning_uri(self.secret, self._config)

    def qr_text(self) -> str:
        return qr_text(self.uri)

    def check(self, code: str) -> int:
        """The step *code* matches for the new secret (raises ``InvalidCode``); saves nothing."""
        digits = _normalise(code)
        if digits is None or len(digits) != self._config.digits:
            raise InvalidCode(f"not a {self._config.digits}-digit code")
        totp = pyotp.TOTP(self.secret, digits=self._config.digits, interval=self._config.period)
        step = int(self._clock.now() // self._config.period)
        matches = _matching_steps(totp, digits, step)
        if not matches:
            raise InvalidCode(
                "wrong code", hint="check that your phone's clock is right and type the new code"
            )
        return max(matches)

    def confirm(self, code: str, *, rekey: Callable[[str], None] | None = None) -> int:
        """Save the secret if *code* is right; returns the code's step.

        With *rekey* (re-enrolment while a vault exists), the secret is installed through
        :func:`replace_secret` so the vault and the secret never disagree after a crash.
        """
        with self._store.transaction():
            step = self.check(code)
            # Whatever the last accepted step was, afterwards it is at least this one, so
            # the enrolment code cannot also approve a request. (A code of the old secret
            # may have been accepted in this very step just before, to authorise a reset:
            # that must not block the new secret's first code.)
            self._store.advance_last_step(step)
            if rekey is None:
                save_secret(self._totp_file, self.secret)
            else:
                replace_secret(self._totp_file, self.secret, rekey)
        return step
