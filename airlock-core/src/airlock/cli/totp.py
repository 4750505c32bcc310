"""``airlock totp setup | reset``: put a TOTP secret in the person's authenticator app.

When a daemon answers on the socket and a secret is enrolled, setup and reset go through
the daemon (``airlock.daemon.reenrol``): a code of the current secret authorises the
reset, the daemon makes the new secret and shows it to this terminal only, and it takes
effect once a code of the new secret comes back, so the person needs no ``sudo`` in
isolated mode and a mistyped enrolment never locks them out. With the passphrase lock on,
the daemon (unlocked) seals the new secret under the same passphrase.

The first enrolment, and any enrolment with no daemon running, runs in this process on
the data directory (personal mode: the person's own files; isolated mode: root), never
through the daemon: with no secret there is no code to authorise it, and every agent
reaches the socket. The daemon notices the new ``totp.key`` on its next request.

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
    from airlock.api import DaemonStatus, TotpReplaced
    from airlock.security.audit import AuditLog
    from airlock.settings.config import AirlockConfig
    from airlock.settings.paths import AirlockPaths
    from airlock.state.store import StateStore

TTY_ATTEMPTS = 3


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


def _show(uri: str, secret: str, tty: bool) -> None:
    if not tty:
        sys.stdout.write(uri + "\n")
        sys.stdout.flush()
        return
    from airlock.security.totp import qr_text

    typer.echo("Scan this with your authenticator app (Aegis, Google Authenticator, 1Password…):\n")
    typer.echo(qr_text(uri))
    typer.echo(f"or open:    {uri}")
    typer.echo(f"or type in: {secret}\n")


def _confirm_code(check: Callable[[str], object], tty: bool) -> str:
    """A code that *check* accepts for the new secret: prompted (with retries) or one
    stdin line."""
    from airlock.errors import InvalidCode, InvalidInput

    if not tty:
        line = sys.stdin.readline()
        if not line.strip():
            raise InvalidInput("expected the first code from the app on stdin", field="code")
        check(line.strip())
        return line.strip()
    for attempt in range(1, TTY_ATTEMPTS + 1):
        code = str(typer.prompt("Code shown by the app")).strip()
        try:
            check(code)
        except InvalidCode as exc:
            if attempt == TTY_ATTEMPTS:
                raise
            typer.echo(f"{exc.message}; {exc.hint or 'try again'}", err=True)
            continue
        return code
    raise AssertionError("unreachable")


def _daemon_status(state: CliState) -> DaemonStatus | None:
    """What a daemon answering on this home's socket says, or None when none answers."""
    from airlock.cli.client_support import with_client
    from airlock.errors import AirlockError

    try:
        return with_client(state, lambda c: c.status())
    except AirlockError:
        return None


def _through_daemon(state: CliState, tty: bool) -> None:
    """Replace the secret with the running daemon (see ``airlock.daemon.reenrol``)."""
    from urllib.parse import parse_qs, urlsplit

    from airlock.cli.client_support import read_totp, with_client

    code = read_totp(prompt="Code from the app you are replacing")
    started = with_client(state, lambda c: c.totp_reset(totp=code))
    secret = parse_qs(urlsplit(started.uri).query).get("secret", [""])[0]
    _show(started.uri, secret, tty)

    def confirm(new_code: str) -> TotpReplaced:
        return with_client(state, lambda c: c.totp_confirm(started.id, totp=new_code))

    done: list[TotpReplaced] = []
    _confirm_code(lambda new_code: done.append(confirm(new_code)), tty)
    if done[-1].sealed:
        typer.echo("the new secret is sealed with your passphrase, like the old one")
    elif done[-1].vault_rekeyed:
        typer.echo("the vault is re-keyed to the new secret")


def _writable(paths: AirlockPaths) -> bool:
    """Whether this process may write the data directory (or create it)."""
    where = paths.data_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    return os.access(where, os.W_OK)


def enrol(state: CliState, *, replacing: bool) -> bool:
    """Enrol a new secret; returns whether one was replaced.

    With a daemon answering, an enrolled secret is replaced through it (a code of the
    current secret authorises it, the daemon writes its own state); the first enrolment,
    and any enrolment with no daemon running, is written here by whoever may write the
    data directory (the person in personal mode, root in isolated mode).
    """
    from airlock.errors import AirlockError, NotEnrolled

    tty = sys.stdin.isatty()
    running = _daemon_status(state)
    if running is not None and running.passphrase_locked:
        from airlock.passphrase import DaemonLocked

        raise DaemonLocked(
            "the passphrase lock is closed: the secret can be replaced once it is open",
            hint="run `airlock unlock`, then this again: the new secret is sealed with the "
            "same passphrase",
        )
    if running is not None and running.totp_enrolled:
        _through_daemon(state, tty)
        return True
    if replacing and running is not None:
        raise NotEnrolled("no TOTP secret to reset", hint="enrol with `airlock totp setup`")
    if not _writable(state.paths):
        from airlock.daemon.reenrol import FIRST_ENROLMENT_HINT

        if running is None:
            raise AirlockError(
                f"no daemon answers and you may not write {state.paths.data_dir}",
                hint="start the daemon (`sudo airlock service start`) to replace the secret "
                "with a code; " + FIRST_ENROLMENT_HINT,
            )
        raise AirlockError(
            "the daemon has no TOTP secret yet, and only root may enrol the first one",
            hint=FIRST_ENROLMENT_HINT,
        )
    return _enrol_locally(state, replacing=replacing)


def _enrol_locally(state: CliState, *, replacing: bool) -> bool:
    from airlock.daemon.reenrol import vault_follows
    from airlock.errors import NotEnrolled
    from airlock.security.totp import finish_pending_secret
    from airlock.settings.paths import Mode

    paths, config = state.paths, state.config
    paths.ensure_data_dirs()
    from airlock.passphrase import lock_is_on

    if lock_is_on(paths):
        from airlock.errors import AirlockError

        raise AirlockError(
            "the passphrase lock is on: only the running daemon, unlocked, can replace a "
            "sealed secret",
            hint="start it (`airlock service start`), `airlock unlock`, then this again",
        )
    finish_pending_secret(paths.totp_file, vault_follows(paths))
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
    from airlock.daemon.reenrol import vault_rekey
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
        _show(enrolment.uri, enrolment.secret, tty)
        code = _confirm_code(enrolment.check, tty)
        # Audited before the secret is saved: if the record cannot be written, nothing changes.
        audit.append_sync("totp_enrolled", replaced=old is not None, **_actor())
        rekey = vault_rekey(paths, old) if old else None
        enrolment.confirm(code, rekey=rekey)
    if rekey is not None:
        typer.echo("the vault is re-keyed to the new secret")
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
        typer.echo("TOTP secret replaced; remove the old entry from your app.")
    else:
        typer.echo("TOTP enrolled: approvals now need a code from this app.")
