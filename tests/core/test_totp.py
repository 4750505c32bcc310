"""TOTP: a code approves once, guessing locks approvals, enrolment saves only a proven secret."""

from __future__ import annotations

import contextlib
import stat
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from airlock.common.clock import FakeClock
from airlock.errors import ApprovalsLocked, CodeAlreadyUsed, InvalidCode, NotEnrolled
from airlock.security.lockout import lockout_for
from airlock.security.totp import (
    Enrolment,
    TotpVerifier,
    finish_pending_secret,
    load_secret,
    new_secret,
    pending_secret_file,
    provisioning_uri,
    replace_secret,
    save_secret,
)
from airlock.security.vault import TotpKey, Vault
from airlock.settings.config import ApprovalsConfig, TotpConfig
from airlock.state.store import StateStore

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PERIOD = 30
APPROVALS = ApprovalsConfig(max_failures=5, failure_window=900, lockout=900)


def code_at(step: int, secret: str = SECRET, digits: int = 6) -> str:
    return pyotp.TOTP(secret, digits=digits).generate_otp(step)


def wrong_code(step: int) -> str:
    right = code_at(step)
    candidates = {code_at(step - 1), right, code_at(step + 1)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in candidates)


@pytest.fixture
def verifier(store: StateStore, clock: FakeClock) -> TotpVerifier:
    return TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)


def step_of(clock: FakeClock) -> int:
    return int(clock.now() // PERIOD)


# --- verification -------------------------------------------------------------------------


def test_the_current_code_is_accepted_and_names_its_step(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    assert verifier.verify(code_at(step_of(clock))) == step_of(clock)


def test_codes_one_step_either_side_are_accepted(store: StateStore, clock: FakeClock) -> None:
    now = step_of(clock)
    behind = TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)
    assert behind.verify(code_at(now - 1)) == now - 1
    assert behind.verify(code_at(now + 1)) == now + 1


@pytest.mark.parametrize("offset", [-2, 2, 10])
def test_codes_further_away_are_wrong(
    verifier: TotpVerifier, clock: FakeClock, offset: int
) -> None:
    with pytest.raises(InvalidCode, match="wrong code"):
        verifier.verify(code_at(step_of(clock) + offset))


def test_a_reused_code_is_refused(verifier: TotpVerifier, clock: FakeClock) -> None:
    code = code_at(step_of(clock))
    verifier.verify(code)
    with pytest.raises(InvalidCode, match="already used"):
        verifier.verify(code)


def test_a_reused_code_is_refused_even_after_the_next_step_starts(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    code = code_at(step_of(clock))
    verifier.verify(code)
    clock.advance(PERIOD)  # the old code is still inside the ±1 window
    with pytest.raises(InvalidCode, match="already used"):
        verifier.verify(code)


def test_a_code_for_the_step_before_the_last_accepted_one_is_refused(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    now = step_of(clock)
    verifier.verify(code_at(now))
    with pytest.raises(InvalidCode):
        verifier.verify(code_at(now - 1))


def test_the_next_code_is_accepted_after_one_was_used(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    verifier.verify(code_at(step_of(clock)))
    clock.advance(PERIOD)
    assert verifier.verify(code_at(step_of(clock))) == step_of(clock)


def test_codes_may_carry_spaces(verifier: TotpVerifier, clock: FakeClock) -> None:
    code = code_at(step_of(clock))
    assert verifier.verify(f" {code[:3]} {code[3:]} ") == step_of(clock)


@pytest.mark.parametrize("script", ["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९"])
def test_the_code_in_a_keyboards_own_digits_is_the_code(
    verifier: TotpVerifier, clock: FakeClock, script: str
) -> None:
    """A phone keyboard may type the person's code in Arabic-Indic, full-width or
    Devanagari digits: their own correct code, which was refused and counted toward the
    lockout (five such replies locked approvals)."""
    code = code_at(step_of(clock))
    typed = "".join(script[int(digit)] for digit in code)
    assert verifier.verify(f"{typed[:3]} {typed[3:]}") == step_of(clock)
    assert verifier.lock_state().recent_failures == 0


@pytest.mark.parametrize(
    "junk", ["", "12345", "1234567", "abcdef", "１２３４５６", "¹²³⁴⁵⁶", "①②③④⑤⑥", "9" * 5000]
)
def test_things_that_are_not_codes_are_refused_and_counted(
    verifier: TotpVerifier, junk: str
) -> None:
    with pytest.raises(InvalidCode):
        verifier.verify(junk)
    assert verifier.lock_state().recent_failures == 1


def test_the_configured_digits_and_period_are_used(store: StateStore, clock: FakeClock) -> None:
    config = TotpConfig(digits=8, period=60)
    verifier = TotpVerifier(store, SECRET, config, APPROVALS, clock)
    step = int(clock.now() // 60)
    code = pyotp.TOTP(SECRET, digits=8, interval=60).generate_otp(step)
    assert verifier.verify(code) == step


def test_without_a_secret_nothing_is_verified(store: StateStore, clock: FakeClock) -> None:
    verifier = TotpVerifier(store, None, TotpConfig(), APPROVALS, clock)
    assert not verifier.enrolled
    with pytest.raises(NotEnrolled) as caught:
        verifier.verify("123456")
    assert "airlock totp setup" in (caught.value.hint or "")


def test_racing_approvals_with_one_code_accept_it_once(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    code = code_at(step_of(clock))
    accepted: list[int] = []
    barrier = threading.Barrier(8)

    def approve() -> None:
        barrier.wait()
        # 7 replays are 5 failures: approvals lock before the last ones are checked
        with contextlib.suppress(InvalidCode, ApprovalsLocked):
            accepted.append(verifier.verify(code))

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(accepted) == 1


def test_the_secret_stays_out_of_repr(verifier: TotpVerifier) -> None:
    assert SECRET not in repr(verifier)
    assert SECRET not in repr(verifier.__dict__)


# --- lockout ------------------------------------------------------------------------------


def test_lockout_happens_exactly_at_the_attempt_after_max_failures(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    for attempt in range(1, 6):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
        assert verifier.lock_state().locked == (attempt == 5)
    with pytest.raises(ApprovalsLocked) as caught:
        verifier.verify(code_at(step_of(clock)))
    assert caught.value.status == 423


def test_the_failure_that_locks_says_so(verifier: TotpVerifier, clock: FakeClock) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCode, match="left before approvals lock"):
            verifier.verify(wrong_code(step_of(clock)))
    with pytest.raises(InvalidCode, match="approvals are locked for 15m"):
        verifier.verify(wrong_code(step_of(clock)))


def test_while_locked_correct_codes_are_refused_and_the_lock_lifts_on_time(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
    locked_at = clock.now()
    for _ in range(3):
        clock.advance(299)
        with pytest.raises(ApprovalsLocked):
            verifier.verify(code_at(step_of(clock)))
    clock.set(locked_at + 900)
    assert verifier.verify(code_at(step_of(clock))) == step_of(clock)
    assert not verifier.lock_state().locked


def test_attempts_while_locked_do_not_extend_the_lock(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
    until = verifier.lock_state().locked_until
    clock.advance(600)
    with pytest.raises(ApprovalsLocked):
        verifier.verify(wrong_code(step_of(clock)))
    assert verifier.lock_state().locked_until == until


def test_failures_outside_the_window_do_not_count(verifier: TotpVerifier, clock: FakeClock) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
    clock.advance(901)
    for _ in range(4):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
    state = verifier.lock_state()
    assert not state.locked
    assert state.recent_failures == 4
    assert state.attempts_left == 1


def test_a_correct_code_does_not_wipe_earlier_failures(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    for _ in range(4):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
    verifier.verify(code_at(step_of(clock)))
    with pytest.raises(InvalidCode):
        verifier.verify(wrong_code(step_of(clock)))
    assert verifier.lock_state().locked


def test_resending_the_last_accepted_code_is_refused_without_counting(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    code = code_at(step_of(clock))
    verifier.verify(code)
    for _ in range(10):
        with pytest.raises(CodeAlreadyUsed, match="already used: wait for the next code"):
            verifier.verify(code)
    assert verifier.lock_state().recent_failures == 0
    assert verifier.verify(code_at(step_of(clock) + 1)) == step_of(clock) + 1


def test_an_older_code_than_the_last_accepted_one_counts_as_a_failure(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    verifier.verify(code_at(step_of(clock) + 1))
    with pytest.raises(InvalidCode) as refused:
        verifier.verify(code_at(step_of(clock)))
    assert not isinstance(refused.value, CodeAlreadyUsed)
    assert verifier.lock_state().recent_failures == 1


def test_the_enrolment_code_sent_to_approve_costs_no_attempt(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    enrolment = Enrolment(tmp_path / "totp.key", store, TotpConfig(), clock)
    code = code_at(step_of(clock), enrolment.secret)
    enrolment.confirm(code)
    verifier = TotpVerifier(store, enrolment.secret, TotpConfig(), APPROVALS, clock)
    with pytest.raises(CodeAlreadyUsed):
        verifier.verify(code)
    assert verifier.lock_state().attempts_left == APPROVALS.max_failures


def lock_out(verifier: TotpVerifier, clock: FakeClock) -> float:
    """Send wrong codes until approvals lock; how long the lock lasts."""
    for _ in range(2 * APPROVALS.max_failures):
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
        until = verifier.lock_state().locked_until
        if until is not None:
            return until - clock.now()
    raise AssertionError("approvals never locked")


def test_each_lockout_in_a_row_lasts_twice_the_last_up_to_a_day(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    lasted = []
    for _ in range(10):
        lasted.append(lock_out(verifier, clock))
        clock.advance(lasted[-1])
    assert lasted == [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400, 86400]
    for _ in range(APPROVALS.max_failures - 1):
        with pytest.raises(InvalidCode, match="left before approvals lock"):
            verifier.verify(wrong_code(step_of(clock)))
    with pytest.raises(InvalidCode, match=r"locked for 1d \(lockout 11 in a row"):
        verifier.verify(wrong_code(step_of(clock)))


def test_an_accepted_code_does_not_end_the_doubling(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    """An agent can have the person approve something whenever it likes: their code must
    not bring the guesser back to short lockouts."""
    clock.advance(lock_out(verifier, clock))
    clock.advance(lock_out(verifier, clock))
    assert verifier.verify(code_at(step_of(clock))) == step_of(clock)
    clock.advance(PERIOD)
    assert lock_out(verifier, clock) == 3600


@pytest.mark.parametrize(("days", "lasts"), [(0, 3600), (1, 1800), (2, 900), (5, 900)])
def test_each_day_after_the_last_lockout_ended_takes_one_off_the_doubling(
    verifier: TotpVerifier, clock: FakeClock, days: int, lasts: int
) -> None:
    """A person who mistypes now and then waits ``approvals.lockout`` again; a guesser
    who waits a day after each run of lockouts starts again one step down, not at the
    bottom."""
    clock.advance(lock_out(verifier, clock))
    clock.advance(lock_out(verifier, clock) + days * 86_400)
    assert lock_out(verifier, clock) == lasts


def test_twice_the_failures_a_day_lock_however_they_are_spread(
    verifier: TotpVerifier, clock: FakeClock
) -> None:
    """A guesser staying one short of ``max_failures`` in every window was never locked
    (nor was anyone told): the day's count locks it at twice the limit."""
    sent = 0
    while not verifier.lock_state().locked:
        with pytest.raises(InvalidCode):
            verifier.verify(wrong_code(step_of(clock)))
        sent += 1
        if sent % (APPROVALS.max_failures - 1) == 0:
            clock.advance(APPROVALS.failure_window + 1)
    assert sent == 2 * APPROVALS.max_failures


def _one_short(verifier: TotpVerifier, clock: FakeClock, window: int) -> None:
    """Stay under the limit: once one attempt is left, wait out the window."""
    if verifier.lock_state().attempts_left == 1:
        clock.advance(window + 1)


@pytest.mark.parametrize("strategy", ["whenever open", "one short of the limit"])
@pytest.mark.parametrize("approves_every", [None, 8 * 3600], ids=["alone", "person approves"])
def test_a_month_of_guessing_checks_a_few_hundred_codes_at_most(
    store: StateStore, clock: FakeClock, approves_every: int | None, strategy: str
) -> None:
    """At the loosest settings (10 wrong codes in 5 minutes lock for 5 minutes), a guesser
    sending a code whenever approvals are open, or staying one short of the limit: a fixed
    lockout let ~86,000 codes be checked in 30 days (a 23 % chance to hit one), or ~77,000
    never locked at all; now fewer than 20 a day (under 600), also when the person
    approves something (which the agent may ask for) three times a day."""
    loosest = ApprovalsConfig(max_failures=10, failure_window=300, lockout=300)
    verifier = TotpVerifier(store, SECRET, TotpConfig(), loosest, clock)
    end = clock.now() + 30 * 86_400
    next_approval = clock.now() + (approves_every or end)
    checked = 0
    while clock.now() < end:
        if approves_every and clock.now() >= next_approval:
            with contextlib.suppress(ApprovalsLocked, CodeAlreadyUsed):  # later, then
                verifier.verify(code_at(step_of(clock)))
                next_approval += approves_every
        try:
            verifier.verify(wrong_code(step_of(clock)))
        except ApprovalsLocked:
            until = verifier.lock_state().locked_until
            assert until is not None
            clock.set(until)
        except InvalidCode:
            checked += 1
            clock.advance(1)
            if strategy == "one short of the limit":
                _one_short(verifier, clock, loosest.failure_window)
    assert checked <= 30 * 2 * loosest.max_failures


def test_a_configured_lockout_longer_than_a_day_is_kept_as_set() -> None:
    assert lockout_for(2 * 86_400, 0) == 2 * 86_400
    assert lockout_for(2 * 86_400, 5) == 2 * 86_400
    assert lockout_for(300, 1000) == 86_400


def test_the_lock_survives_a_restart(data_dir: Path, clock: FakeClock) -> None:
    path = data_dir / "state.db"
    with StateStore(path) as store:
        verifier = TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)
        for _ in range(5):
            with pytest.raises(InvalidCode):
                verifier.verify(wrong_code(step_of(clock)))
    clock.advance(60)
    with StateStore(path) as store:
        verifier = TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)
        assert verifier.lock_state().locked
        with pytest.raises(ApprovalsLocked):
            verifier.verify(code_at(step_of(clock)))


def test_lockouts_in_a_row_are_counted_across_a_restart(data_dir: Path, clock: FakeClock) -> None:
    """A daemon stopped and started again (which an agent running as the person can do)
    does not make the next lockout the first again."""
    path = data_dir / "state.db"
    with StateStore(path) as store:
        verifier = TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)
        clock.advance(lock_out(verifier, clock))
    with StateStore(path) as store:
        verifier = TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)
        assert lock_out(verifier, clock) == 1800


def test_the_used_code_stays_refused_after_a_restart(data_dir: Path, clock: FakeClock) -> None:
    path = data_dir / "state.db"
    code = code_at(step_of(clock))
    with StateStore(path) as store:
        TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock).verify(code)
    with StateStore(path) as store, pytest.raises(InvalidCode, match="already used"):
        TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock).verify(code)


# --- enrolment ----------------------------------------------------------------------------


def test_the_uri_carries_the_secret_and_encodes_issuer_and_account() -> None:
    config = TotpConfig(issuer="ACME Labs/Ops", account="me+ai@example.com: home")
    uri = provisioning_uri(SECRET, config)
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert parsed.path.count("/") == 1
    assert parsed.path.count(":") == 1
    issuer, account = (unquote(part) for part in parsed.path[1:].split(":"))
    assert (issuer, account) == ("ACME Labs/Ops", "me+ai@example.com: home")
    query = parse_qs(parsed.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["ACME Labs/Ops"]
    assert query["digits"] == ["6"]
    assert query["period"] == ["30"]
    assert " " not in uri
    otp = pyotp.parse_uri(uri)
    assert otp.secret == SECRET
    assert otp.issuer == "ACME Labs/Ops"


def test_new_secrets_are_160_bit_base32_and_unique() -> None:
    secrets_ = {new_secret() for _ in range(100)}
    assert len(secrets_) == 100
    assert all(len(s) == 32 and pyotp.TOTP(s).now().isdigit() for s in secrets_)


def test_enrolment_shows_a_qr_code_for_the_terminal(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    enrolment = Enrolment(tmp_path / "totp.key", store, TotpConfig(), clock)
    lines = enrolment.qr_text().splitlines()
    assert len(lines) > 10
    assert set("".join(lines)) <= {"█", "▀", "▄", " "}
    assert enrolment.secret in enrolment.uri
    assert enrolment.secret not in repr(enrolment)


def test_a_wrong_confirmation_code_saves_nothing(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    totp_file = tmp_path / "data" / "totp.key"
    enrolment = Enrolment(totp_file, store, TotpConfig(), clock)
    step = step_of(clock)
    good = {code_at(s, enrolment.secret) for s in (step - 1, step, step + 1)}
    bad = next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in good)
    with pytest.raises(InvalidCode):
        enrolment.confirm(bad)
    assert not totp_file.exists()
    assert store.last_step() is None


def test_a_correct_code_saves_the_secret_privately(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    totp_file = tmp_path / "data" / "totp.key"
    enrolment = Enrolment(totp_file, store, TotpConfig(), clock)
    enrolment.confirm(code_at(step_of(clock), enrolment.secret))
    assert load_secret(totp_file) == enrolment.secret
    assert stat.S_IMODE(totp_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(totp_file.parent.stat().st_mode) == 0o700


def test_the_enrolment_code_cannot_also_approve_a_request(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    enrolment = Enrolment(tmp_path / "totp.key", store, TotpConfig(), clock)
    code = code_at(step_of(clock), enrolment.secret)
    enrolment.confirm(code)
    verifier = TotpVerifier(store, enrolment.secret, TotpConfig(), APPROVALS, clock)
    with pytest.raises(InvalidCode, match="already used"):
        verifier.verify(code)


def test_a_new_secret_can_be_confirmed_in_the_step_the_old_code_was_used(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    # A reset proves the old secret first; the new app's first code may share its step.
    verifier = TotpVerifier(store, SECRET, TotpConfig(), APPROVALS, clock)
    verifier.verify(code_at(step_of(clock)))
    enrolment = Enrolment(tmp_path / "totp.key", store, TotpConfig(), clock)
    assert enrolment.confirm(code_at(step_of(clock), enrolment.secret)) == step_of(clock)
    assert load_secret(tmp_path / "totp.key") == enrolment.secret


def test_a_missing_secret_file_means_not_enrolled(tmp_path: Path) -> None:
    with pytest.raises(NotEnrolled):
        load_secret(tmp_path / "totp.key")


# --- re-enrolment and the vault -------------------------------------------------------------


def test_re_enrolment_re_keys_the_vault_to_the_new_secret(
    tmp_path: Path, store: StateStore, clock: FakeClock
) -> None:
    totp_file, vault_file = tmp_path / "totp.key", tmp_path / "secrets.enc"
    save_secret(totp_file, SECRET)
    vault = Vault(vault_file, TotpKey(SECRET))
    vault.set("gmail", {"password": "hunter2"})
    enrolment = Enrolment(totp_file, store, TotpConfig(), clock)
    enrolment.confirm(
        code_at(step_of(clock), enrolment.secret), rekey=lambda s: vault.rekey(TotpKey(s))
    )
    assert load_secret(totp_file) == enrolment.secret
    assert not pending_secret_file(totp_file).exists()
    assert Vault(vault_file, TotpKey(enrolment.secret)).get("gmail") == {"password": "hunter2"}
    assert not Vault(vault_file, TotpKey(SECRET)).opens_with(TotpKey(SECRET))


def test_a_crash_before_the_vault_was_re_keyed_keeps_the_old_secret(tmp_path: Path) -> None:
    totp_file, vault_file = tmp_path / "totp.key", tmp_path / "secrets.enc"
    save_secret(totp_file, SECRET)
    vault = Vault(vault_file, TotpKey(SECRET))
    vault.set("gmail", {"password": "hunter2"})
    save_secret(pending_secret_file(totp_file), new_secret())  # the crash came here
    in_force = finish_pending_secret(totp_file, lambda s: vault.opens_with(TotpKey(s)))
    assert in_force == SECRET
    assert load_secret(totp_file) == SECRET
    assert not pending_secret_file(totp_file).exists()
    assert vault.get("gmail") == {"password": "hunter2"}


def test_a_crash_after_the_vault_was_re_keyed_finishes_the_change(tmp_path: Path) -> None:
    totp_file, vault_file = tmp_path / "totp.key", tmp_path / "secrets.enc"
    save_secret(totp_file, SECRET)
    vault = Vault(vault_file, TotpKey(SECRET))
    vault.set("gmail", {"password": "hunter2"})
    fresh = new_secret()
    save_secret(pending_secret_file(totp_file), fresh)
    vault.rekey(TotpKey(fresh))  # ...and the crash came here, before the rename
    in_force = finish_pending_secret(totp_file, lambda s: vault.opens_with(TotpKey(s)))
    assert in_force == fresh
    assert load_secret(totp_file) == fresh
    assert Vault(vault_file, TotpKey(fresh)).get("gmail") == {"password": "hunter2"}


def test_nothing_pending_means_nothing_to_finish(tmp_path: Path) -> None:
    save_secret(tmp_path / "totp.key", SECRET)
    assert finish_pending_secret(tmp_path / "totp.key", lambda s: True) is None
    assert load_secret(tmp_path / "totp.key") == SECRET


def test_replace_secret_installs_the_secret_after_the_rekey(tmp_path: Path) -> None:
    totp_file = tmp_path / "totp.key"
    save_secret(totp_file, SECRET)
    seen: list[tuple[str, bool]] = []

    def rekey(secret: str) -> None:
        seen.append((load_secret(totp_file), pending_secret_file(totp_file).exists()))

    fresh = new_secret()
    replace_secret(totp_file, fresh, rekey)
    assert seen == [(SECRET, True)]
    assert load_secret(totp_file) == fresh
