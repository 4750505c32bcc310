"""Everything the daemon holds, assembled once at start: config, state, vault, audit,
approvals, gateway, notifiers. Handlers only translate HTTP to calls on this object."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any

from airlock.api import DaemonStatus, ServiceList, SessionInfo, TotpReplaced, TotpResetStarted
from airlock.common.clock import Clock, SystemClock
from airlock.common.logs import get_logger
from airlock.connector_host.client import ConnectorHost
from airlock.connector_host.link import HostLauncher
from airlock.daemon import answers
from airlock.daemon.audit_budget import BudgetNotices, keep_audit_budget
from airlock.daemon.connector_link import HostConnection
from airlock.daemon.credentials import CredentialDesk
from airlock.daemon.keeper import SecretKeeper
from airlock.daemon.listeners import Listener, listen_to
from airlock.daemon.lowered_limits import LoweredLimits
from airlock.daemon.notifier_set import close_notifiers, open_notifiers
from airlock.daemon.recorded_revocations import apply_recorded_revocations, write_held_revocations
from airlock.daemon.reenrol import Reenrolments
from airlock.daemon.reload import Parts, recorded, retire
from airlock.daemon.unrecorded_holds import UnrecordedHolds
from airlock.errors import SERVICES_LISTED, NotFound
from airlock.framework.notifiers import Notice, Notifier
from airlock.framework.plugins import AirlockPluginManager, get_connectors, get_policies
from airlock.gateway.budgets import Budgets
from airlock.gateway.context import DaemonContext
from airlock.gateway.gateway import Gateway
from airlock.gateway.priced_calls import PricedCalls
from airlock.gateway.services import Service, resolve_services
from airlock.passphrase import DaemonLocked, WrongPassphrase
from airlock.security import totp
from airlock.security.approvals import ApprovalService
from airlock.security.audit import AuditLog
from airlock.security.channels import SEND_TIMEOUT, Channels
from airlock.security.code_checks import CodeChecker
from airlock.security.peers import Peer
from airlock.security.replies import ReplyHandler
from airlock.security.sessions import SessionManager
from airlock.security.targets import TargetNotes
from airlock.security.vault import Vault
from airlock.settings.config import CONFIG_CHANGED, AirlockConfig, config_digest, load_config
from airlock.settings.paths import AirlockPaths
from airlock.state.store import StateStore

log = get_logger("airlock.daemon")

EXPIRY_INTERVAL = 5.0
IDLE_CLOSE_SECONDS = 300.0
STOP_WAIT = 5.0
"""How long stopping waits for the daemon's own tasks (listeners, housekeeping) to end."""


class _CurrentSecretVerifier(totp.TotpVerifier):
    """Checks every code against the secret as it is now: ``airlock totp setup|reset`` may
    have replaced it, or the passphrase lock closed it, while the daemon runs."""

    before: Callable[[], None] | None = None

    def verify(self, code: str) -> int:
        if self.before is not None:
            self.before()
        return super().verify(code)


class Runtime:
    config: AirlockConfig
    services: dict[str, Service]
    sessions: SessionManager
    verifier: totp.TotpVerifier
    codes: CodeChecker
    notifiers: dict[str, Notifier]
    channels: Channels
    approvals: ApprovalService
    replies: ReplyHandler
    gateway: Gateway

    def __init__(
        self,
        paths: AirlockPaths,
        pm: AirlockPluginManager,
        *,
        clock: Clock | None = None,
        config: AirlockConfig | None = None,
        host: HostLauncher | None = None,
    ) -> None:
        self.paths = paths
        self.pm = pm
        self.clock = clock or SystemClock()
        # Taken before reading, so an edit racing the start shows as a change, not the reverse.
        self.config_digest = config_digest(paths.config_file) if config is None else None
        config = config or load_config(paths.config_file)
        paths.ensure_data_dirs()
        self.connectors = get_connectors(pm)
        self.policies = get_policies(pm)
        self.store = StateStore(paths.state_db)
        self.audit = AuditLog(
            paths.audit_dir,
            paths.audit_key_file,
            rotate_bytes=config.audit.rotate_bytes,
            clock=self.clock,
            writer_process=True,
        )
        self.vault = Vault(paths.vault_file)
        self.unlisted_until: dict[str, float] = {}
        self.targets = TargetNotes()  # what pending writes act on, kept across reloads
        self._notices: set[asyncio.Task[Any]] = set()
        self.keeper = SecretKeeper(paths, self.clock)
        self.host = HostConnection(paths, pm, config, self.audit, launcher=host)
        self.link = self.host.link
        self.credentials = CredentialDesk(self)
        self.reenrolments = Reenrolments(paths, self.keeper, self.audit, self.clock)
        self.priced = PricedCalls(Budgets(self.store, self.clock))
        self.holds = UnrecordedHolds(self.priced.budgets, self.audit)
        self.limits = LoweredLimits(self.store, self.priced.budgets, self.audit, self.clock)
        self.budget_notices = BudgetNotices()
        self._use(self._assemble(config))
        self._tasks: list[asyncio.Task[None]] = []
        self.listeners: dict[str, Listener] = {}
        """Each notifier's, by its name (``daemon.listeners``)."""
        self._reloading = asyncio.Lock()
        self.logins = asyncio.Lock()
        """Held while a dashboard login's code is checked and its session saved, and while
        a replaced secret ends the logins: none checked with the old secret survives it."""
        self.on_reload: list[Callable[[AirlockConfig], None]] = []

    # -- what follows the config (built at start, rebuilt by reload) --------------------

    def _assemble(self, config: AirlockConfig) -> Parts:
        """Everything the config decides, built aside: nothing in use changes until
        :meth:`_use`, so a config that fails here leaves the running one alone."""
        services = resolve_services(config, self.connectors)
        sessions = SessionManager(self.store, config.sessions, self.clock)
        verifier = _CurrentSecretVerifier(
            self.store, None, config.totp, config.approvals, self.clock
        )
        secret, key = self.keeper.read()
        verifier.set_secret(secret)
        if key is not None:
            self.vault.unlock(key)
        notifiers, self.installed_notifiers = open_notifiers(
            self.pm, config, self.vault, enrolled=secret is not None
        )
        channels = Channels(notifiers, self.audit)
        host = ConnectorHost(self.link, services)
        codes = CodeChecker(verifier, self.audit, channels)
        context = DaemonContext(
            store=self.store,
            sessions=sessions,
            config=config,
            clock=self.clock,
            audit=self.audit,
            services=services,
            policies=self.policies,
            describe=host.describe,
            targets=self.targets,
        )
        approvals = ApprovalService(
            context, codes=codes, channels=channels, operation_spec=host.spec
        )
        rejected = self.credentials.rejected
        gateway = Gateway(context, host=host, priced=self.priced, on_credentials_rejected=rejected)
        replies = ReplyHandler(approvals, channels, self.audit, self.clock)
        parts = (config, services, sessions, verifier, codes, notifiers, channels, approvals)
        return Parts(*parts, replies, gateway)

    def _use(self, parts: Parts) -> None:
        self.config = parts.config
        self.services = parts.services
        self.sessions = parts.sessions
        self.verifier = parts.verifier
        self.codes = parts.codes
        self.notifiers = parts.notifiers
        self.channels = parts.channels
        self.approvals = parts.approvals
        self.replies = parts.replies
        self.gateway = parts.gateway
        if isinstance(self.verifier, _CurrentSecretVerifier):
            self.verifier.before = self._before_verify

    # -- TOTP and vault -----------------------------------------------------------------

    def refresh_totp(self) -> None:
        """Pick up a secret enrolled, reset, sealed or unlocked while we run."""
        if not self.keeper.changed():
            return
        secret, key = self.keeper.read()
        self.verifier.set_secret(secret)
        if key is None:
            self.vault.lock()
            if self.keeper.locked:
                # The passphrase lock was turned on: the host forgets its key too.
                self.host.passphrase = None
                if self.link.connected:
                    self.in_background(self.link.request("lock"))
        else:
            self.vault.unlock(key)

    def in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work)
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    def _before_verify(self) -> None:
        self.refresh_totp()
        if self.keeper.locked:
            raise DaemonLocked()

    async def totp_reset(self, code: str, peer: Peer) -> TotpResetStarted:
        """Start replacing the secret (``airlock.daemon.reenrol``); every channel is told."""
        self._before_verify()
        started = await self.reenrolments.start(
            code, peer, codes=self.codes, config=self.config, enrolled=self.verifier.enrolled
        )
        self._notify(
            f"Airlock: uid {peer.uid} started replacing the TOTP secret. The old one works "
            "until a code of the new one confirms it; if this was not you, revoke sessions."
        )
        return started

    async def totp_confirm(self, reset_id: str, code: str, peer: Peer) -> TotpReplaced:
        """Put a started reset's secret in force; every channel is told."""
        self._before_verify()
        done = await self.reenrolments.confirm(
            reset_id, code, peer, store=self.store, config=self.config
        )
        async with self.logins:
            self.refresh_totp()
            ended = await self.approvals.end_logins(why="totp_replaced")
        self._notify(
            f"Airlock: the TOTP secret was replaced (by uid {peer.uid}). Codes of the old "
            f"entry in your app no longer work; {len(ended)} dashboard login(s) ended."
        )
        return done

    def _notify(self, text: str) -> None:
        self.in_background(self.channels.notify_all(Notice(text=text)))

    # -- answers -----------------------------------------------------------------------

    def status(self, peer: Peer) -> DaemonStatus:
        return answers.status(self, peer)

    def session_infos(self, uid: int | None) -> list[SessionInfo]:
        return answers.session_infos(self, uid)

    async def service_list(self) -> ServiceList:
        return await answers.service_list(self)

    def config_changed(self) -> bool:
        """Whether config.yaml on disk differs from what this daemon loaded at start."""
        return self.config_digest is not None and (
            config_digest(self.paths.config_file) != self.config_digest
        )

    def explain_unknown_service(self, exc: NotFound) -> NotFound:
        """A service this daemon does not know may be one added to the file since."""
        if exc.message.startswith("no service named") and self.config_changed():
            return NotFound(exc.message, field=exc.field, hint=CONFIG_CHANGED)
        if exc.message.startswith("no service named") and exc.hint is None:
            return NotFound(exc.message, field=exc.field, hint=SERVICES_LISTED)
        return exc

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        anchor = self.store.audit_anchor()
        started = await self.audit.append(
            "daemon_started", pid=os.getpid(), mode=self.paths.mode.value
        )
        if started.seq - 1 < anchor:
            # Records were cut off the end of the log while no daemon was watching it.
            log.error("audit_cut_detected", expected_at_least=anchor, found=started.seq - 1)
            await self.audit.append(
                "audit_cut_detected", expected_at_least=anchor, found=started.seq - 1
            )
        self.store.raise_audit_anchor(self.audit.last_seq)
        await apply_recorded_revocations(self.store, self.audit, self.clock)
        # A call in flight when the daemon stopped may have reached the service.
        await self.holds.settle_cut_off()
        await self.limits.apply(self.config, self.services)  # a lower config since the stop
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        self.listeners = listen_to(self.notifiers, self.replies)
        if self.vault.exists() and not self.vault.locked:
            # Service credentials an older release kept here move before any call.
            await self.credentials.move_service_credentials()
        self._tasks.append(asyncio.create_task(self.host.warm()))

    async def reload(self) -> AirlockConfig:
        """Re-read the config, services and notifiers; sessions and pending requests stay.

        A config that does not load (or names a missing plugin) raises ``ConfigError``
        and the running one stays in use.
        """
        async with self._reloading:
            digest = config_digest(self.paths.config_file)
            parts = self._assemble(load_config(self.paths.config_file))
            await self.host.configure(parts.config)
            await recorded(parts, self.audit, self.host, running=self.config)
            await self._swap(parts)
            self.config_digest = digest
            await self.limits.apply(parts.config, parts.services)  # lower limits: open ones too
            log.info("config_reloaded", services=len(self.services))
            return parts.config

    async def unlock(self, passphrase: str, peer: Peer) -> None:
        """Open the passphrase lock; notifiers are rebuilt with their stored credentials."""
        async with self._reloading:
            try:
                await asyncio.to_thread(self.keeper.unlock, passphrase)
            except WrongPassphrase:
                await self.audit.append("unlock_failed", **peer.audit_fields())
                raise
            self.refresh_totp()
            # Open from here on: recorded first, whatever the connector host then says.
            await self.audit.append("daemon_unlocked", **peer.audit_fields())
            self.host.passphrase = passphrase  # a host that connects later gets it too
            await self._swap(self._assemble(self.config))
            await self.host.unlock()
            await self.credentials.move_service_credentials()

    async def _swap(self, parts: Parts) -> None:
        """Put freshly built parts in use, all at once (the uid gate too), and retire the
        old ones in the background: a notifier stuck closing in its client library holds
        back neither the new config nor the next reload (``stop`` waits a while for it)."""
        old_approvals, old_notifiers = self.approvals, self.notifiers
        old_listeners = self.listeners
        self.gateway.uses.flush()
        parts.channels.carry_over(self.channels)
        parts.approvals.carry_over(self.approvals)
        self._use(parts)
        for hook in self.on_reload:
            hook(parts.config)
        self.unlisted_until.clear()  # a reloaded service may list its operations now
        self.listeners = listen_to(self.notifiers, self.replies, before=old_listeners)
        # A prompt's look-up is bounded by the host's timeout, its sending by the channels'.
        grace = self.config.connector_host.timeout + SEND_TIMEOUT
        self.in_background(retire(old_listeners, old_approvals, old_notifiers, grace=grace))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL)
            try:
                await self.housekeeping_round()
            except Exception as exc:
                log.error("housekeeping_failed", error=type(exc).__name__)

    async def housekeeping_round(self) -> None:
        write_held_revocations(self.store)  # first: the rest may fail on the same database
        self.gateway.uses.flush()
        await self.holds.count()
        await self.limits.apply(self.config, self.services)
        self.store.raise_audit_anchor(self.audit.last_seq)
        await self.approvals.expire_due()
        await self.reenrolments.expire_due()
        await self.approvals.purge_finished()
        await keep_audit_budget(self)
        keep = {
            svc for s in self.store.list_sessions(active_at=self.clock.now()) for svc in s.services
        }
        await self.gateway.host.close_idle(keep=keep, idle_seconds=IDLE_CLOSE_SECONDS)

    async def stop(self) -> None:
        tasks = [*self._tasks, *(ls.task for ls in self.listeners.values()), *self._notices]
        for task in tasks:
            task.cancel()
        if tasks:
            # A notifier stuck in its client library must not keep the daemon from stopping.
            _, stuck = await asyncio.wait(tasks, timeout=STOP_WAIT)
            for task in stuck:
                log.warning("task_not_stopping", task=task.get_name())
        await self.approvals.close()
        _at_stop("use_counts", self.gateway.uses.flush)
        await self.holds.count_before_stop()
        await self.link.close()
        await close_notifiers(self.notifiers)
        await self.audit.append("daemon_stopped", pid=os.getpid())
        _at_stop("audit_anchor", lambda: self.store.raise_audit_anchor(self.audit.last_seq))
        await self.audit.aclose()
        self.store.close()


def _at_stop(what: str, write: Callable[[], object]) -> None:
    """A state write at the stop: a database that refuses it (locked by another process
    past the wait) must not keep the audit log from closing."""
    try:
        write()
    except sqlite3.Error as exc:
        log.error("state_write_failed_at_stop", what=what, error=type(exc).__name__)
