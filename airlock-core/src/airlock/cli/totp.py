"""``airlock totp setup | reset``: put a TOTP secret in the person's authenticator app.

Enrolment runs in this process on the data directory (personal mode: the person's own
files; isolated mode: run it as root or the airlock user), not through the daemon: the
daemon notices the new ``totp.key`` on its next request.

On a terminal it draws the QR code, shows the ``otpauth://`` URI and the secret for
manual entry, and asks for the first code (three tries). When stdin is not a terminal
(scripts, tests) the URI is the first line of stdout and the code is the next line of
stdin. Re-enrolling, and ``reset``, first need a valid code of the *current* secret
(a hidden prompt, or the first stdin line; never an argument); the failure counts towards the
approvals lockout like any wrong code. The vault, whose default key derives from the
secret, is re-keyed in a crash-safe order (see ``airlock.security.totp.replace_secret``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from airlock.cli.context import CliState

if TYPE_CHECKING:
    from airlock.security.audit import AuditLog
    from airlock.security.totp import Enrolment
    from airlock.settings.config import AirlockConfig
    from airlock.settings.paths import AirlockPaths
    from airlock.state.store import StateStore

TTY_ATTEMPTS = 3


def _vault_follows(paths: AirlockPaths, config: AirlockConfig) -> Callable[[str], bool]:
    """Whether the vault is (already) keyed by a given TOTP secret."""
    from airlock.security.vault import TotpKey, Vault

    def follows(secret: str) -> bool:
        if config.vault.key != "totp" or not paths.vault_file.exists():
            return True
        return Vault(paths.vault_file, TotpKey(secret)).opens_with(TotpKey(secret))

    return follows


def _rekey(paths: AirlockPaths, config: AirlockConfig, old: str) -> Callable[[str], None] | None:
    from airlock.security.vault import TotpKey, Vault

    if config.vault.key != "totp" or not paths.vault_file.exists():
        return None
    vault = Vault(paths.vault_file, TotpKey(old))

    def rekey(secret: str) -> None:
        vault.rekey(TotpKey(secret))

    return rekey


def _prove_current(store: StateStore, config: AirlockConfig, secret: str, audit: AuditLog) -> None:
    """Check a code of the current secret; a wrong one counts towards the lockout."""
    from airlock.cli.client_support import read_totp
    from airlock.common.clock import SystemClock
    from airlock.errors import ApprovalError
    from airlock.security.totp import TotpVerifier

    code = read_totp(prompt="Code from the app you are replacing")
    verifier = TotpVerifier(store, secret, config.totp, config.approvals, SystemClock())
    try:
        verifier.verify(code)
    except ApprovalError as exc:
        audit.append_sync("approval_failed", purpose="totp_reset", reason=exc.code, **_actor())
        raise


def _actor() -> dict[str, int]:
    return {"uid": os.getuid(), "pid": os.getpid()}


def _show(enrolment: Enrolment, tty: bool) -> None:
    if not tty:
        sys.stdout.write(enrolment.uri + "\n")
        sys.stdout.flush()
        return
    typer.echo("Scan this with your authenticator app (Aegis, Google Authenticator, 1Password…):\n")
    typer.echo(enrolment.qr_text())
    typer.echo(f"or open:    {enrolment.uri}")
    typer.echo(f"or type in: {enrolment.secret}\n")


def _confirm_code(enrolment: Enrolment, tty: bool) -> str:
    """A code that matches the new secret: prompted (with retries) or one stdin line."""
    from airlock.errors import InvalidCode, InvalidInput

    if not tty:
        line = sys.stdin.readline()
        if not line.strip():
            raise InvalidInput("expected the first code from the app on stdin", field="code")
        enrolment.check(line.strip())
        return line.strip()
    for attempt in range(1, TTY_ATTEMPTS + 1):
        code = str(typer.prompt("Code shown by the app")).strip()
        try:
            enrolment.check(code)
        except InvalidCode as exc:
            if attempt == TTY_ATTEMPTS:
                raise
            typer.echo(f"{exc.message}; {exc.hint or 'try again'}", err=True)
            continue
        return code
    raise AssertionError("unreachable")


def enrol(state: CliState, *, replacing: bool) -> bool:
    """Enrol a new secret; returns whether one was replaced."""
    from airlock.errors import NotEnrolled
    from airlock.security.totp import finish_pending_secret
    from airlock.settings.paths import Mode

    paths, config = state.paths, state.config
    paths.ensure_data_dirs()
    from airlock.passphrase import lock_is_on

    if lock_is_on(paths):
        from airlock.errors import AirlockError

        raise AirlockError(
            "the passphrase lock is on: enrolment cannot replace a sealed secret",
            hint="see docs/security.md (passphrase lock)",
        )
    finish_pending_secret(paths.totp_file, _vault_follows(paths, config))
    enrolled = paths.totp_file.exists()
    if replacing and not enrolled:
        raise NotEnrolled("no TOTP secret to reset")
    tty = sys.stdin.isatty()
    try:
        return _enrol_in(paths, config, tty=tty, enrolled=enrolled)
    finally:
        if paths.mode is Mode.ISOLATED:
            # Root enrols for the service: what it wrote must stay the service user's.
            from airlock.service.isolated import give_state_to_service

            give_state_to_service(paths.data_dir)


def _enrol_in(
    paths: AirlockPaths,
    config: AirlockConfig,
    *,
    tty: bool,
    enrolled: bool,
) -> bool:
    from airlock.common.clock import SystemClock
    from airlock.security.audit import AuditLog
    from airlock.security.totp import Enrolment, load_secret
    from airlock.state.store import StateStore

    with (
        StateStore(paths.state_db) as store,
        AuditLog(paths.audit_dir, paths.audit_key_file) as audit,
    ):
        old = load_secret(paths.totp_file) if enrolled else None
        if old is not None:
            _prove_current(store, config, old, audit)
        enrolment = Enrolment(paths.totp_file, store, config.totp, SystemClock())
        _show(enrolment, tty)
        code = _confirm_code(enrolment, tty)
        # Audited before the secret is saved: if the record cannot be written, nothing changes.
        audit.append_sync("totp_enrolled", replaced=old is not None, **_actor())
        enrolment.confirm(code, rekey=_rekey(paths, config, old) if old else None)
    return old is not None


def register(app: typer.Typer) -> None:
    totp_app = typer.Typer(
        name="totp",
        help="Enrol or replace the TOTP secret your authenticator app holds.",
        no_args_is_help=True,
    )

    @totp_app.command("setup")
    def setup(
        ctx: typer.Context,
        passphrase: Annotated[
            bool,
            typer.Option(
                "--passphrase",
                help="Then seal the secret and the vault with a passphrase (prompt or stdin).",
            ),
        ] = False,
    ) -> None:
        """Show a QR code for your authenticator app; saved after the first correct code."""
        replaced = enrol(ctx.obj, replacing=False)
        _done(replaced)
        if passphrase:
            from airlock.cli.lock import set_passphrase

            set_passphrase(ctx.obj)

    @totp_app.command("reset")
    def reset(ctx: typer.Context) -> None:
        """Replace the secret (needs a code of the current one) and re-key the vault."""
        enrol(ctx.obj, replacing=True)
        _done(True)

    app.add_typer(totp_app)


def _done(replaced: bool) -> None:
    if replaced:
        typer.echo(
            "TOTP secret replaced and the vault re-keyed; remove the old entry from your app."
        )
    else:
        typer.echo("TOTP enrolled: approvals now need a code from this app.")
