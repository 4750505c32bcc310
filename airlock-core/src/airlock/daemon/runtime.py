"""Everything the daemon holds, assembled once at start: config, state, vault, audit,
approvals, gateway, notifiers. Handlers only translate HTTP to calls on this object."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

from airlock._version import __version__
from airlock.api import (
    BudgetInfo,
    CredentialsOut,
    DaemonStatus,
    NotifierHealth,
    OperationInfo,
    ServiceHealth,
    ServiceInfo,
    ServiceList,
    SessionInfo,
    ToolAliasInfo,
    TotpReplaced,
    TotpResetStarted,
)
from airlock.common.clock import Clock, SystemClock
from airlock.common.logs import get_logger
from airlock.daemon.keeper import SecretKeeper
from airlock.daemon.reenrol import Reenrolments
from airlock.daemon.reload import Parts
from airlock.errors import AirlockError, InvalidInput, NotEnrolled, NotFound
from airlock.framework.connectors import OperationSpec
from airlock.framework.notifiers import Notice, Notifier
from airlock.framework.plugins import (
    AirlockPluginManager,
    get_connectors,
    get_notifiers,
    get_policies,
)
from airlock.framework.spending import BudgetState, usd
from airlock.gateway.gateway import ConnectorPool, Gateway
from airlock.gateway.services import Service, resolve_services
from airlock.passphrase import DaemonLocked, WrongPassphrase
from airlock.security import totp
from airlock.security.approvals import ApprovalService
from airlock.security.audit import AuditLog, load_or_create_key
from airlock.security.channels import Channels
from airlock.security.code_checks import CodeChecker, CodePurpose
from airlock.security.peers import Peer
from airlock.security.replies import ReplyHandler
from airlock.security.sessions import SessionManager
from airlock.security.vault import Vault
from airlock.settings.config import CONFIG_CHANGED, AirlockConfig, config_digest, load_config
from airlock.settings.paths import AirlockPaths
from airlock.state.store import Session, StateStore

log = get_logger("airlock.daemon")
UNLISTED_RETRY = 60.0
"""Seconds before a service whose connector could not list its operations is asked again."""

EXPIRY_INTERVAL = 5.0
IDLE_CLOSE_SECONDS = 300.0
REJECTED_NOTICE_INTERVAL = 600.0


def session_info(session: Session, budget: BudgetState | None = None) -> SessionInfo:
    from datetime import UTC, datetime

    return SessionInfo(
        id=session.id,
        services=list(session.services),
        access=session.access,
        created_at=datetime.fromtimestamp(session.created_at, UTC),
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        use_count=session.use_count,
        sensitive=session.sensitive,
        budget=BudgetInfo(**budget.as_usd()) if budget is not None else None,
    )


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
            load_or_create_key(paths.audit_key_file),
            rotate_bytes=config.audit.rotate_bytes,
            clock=self.clock,
        )
        self.vault = Vault(paths.vault_file)
        self._rejected_at: dict[str, float] = {}
        self._unlisted_until: dict[str, float] = {}
        self._notices: set[asyncio.Task[None]] = set()
        self.keeper = SecretKeeper(paths, self.clock)
        self.reenrolments = Reenrolments(paths, self.keeper, self.audit, self.clock)
        self._use(self._assemble(config))
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[asyncio.Task[None]] = []
        self._reloading = asyncio.Lock()
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
        notifiers = self._open_notifiers(config, secret is not None)
        channels = Channels(notifiers, self.audit)
        pool = ConnectorPool(services, self.credentials_for)
        codes = CodeChecker(verifier, self.audit, channels)
        approvals = ApprovalService(
            store=self.store,
            sessions=sessions,
            codes=codes,
            config=config,
            clock=self.clock,
            audit=self.audit,
            services=services,
            policies=self.policies,
            channels=channels,
            operation_spec=pool.spec,
        )
        gateway = Gateway(
            store=self.store,
            sessions=sessions,
            services=services,
            policies=self.policies,
            config=config,
            clock=self.clock,
            audit=self.audit,
            pool=pool,
            on_credentials_rejected=self.credentials_rejected,
        )
        replies = ReplyHandler(approvals, channels, self.audit, self.clock)
        return Parts(
            config,
            services,
            sessions,
            verifier,
            codes,
            notifiers,
            channels,
            approvals,
            replies,
            gateway,
        )

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
        else:
            self.vault.unlock(key)

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
        self.refresh_totp()
        self._notify(
            f"Airlock: the TOTP secret was replaced (by uid {peer.uid}). Codes of the old "
            "entry in your app no longer work."
        )
        return done

    def _notify(self, text: str) -> None:
        """A notice on every channel, sent in the background."""
        task = asyncio.create_task(self.channels.notify_all(Notice(text=text)))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def credentials_rejected(self, service: str) -> None:
        """Tell the person (every channel, at most once in REJECTED_NOTICE_INTERVAL a
        service) that a service refused the credentials stored for it."""
        now = self.clock.now()
        if now - self._rejected_at.get(service, -REJECTED_NOTICE_INTERVAL) < (
            REJECTED_NOTICE_INTERVAL
        ):
            return
        self._rejected_at[service] = now
        await self.audit.append("credentials_rejected", service=service)
        text = (
            f"Airlock: {service} refused the credentials stored for it. "
            f"Store valid ones with `airlock credentials add {service}`."
        )
        task = asyncio.create_task(self.channels.notify_all(Notice(text=text)))
        self._notices.add(task)  # sent in the background: the agent's answer need not wait
        task.add_done_callback(self._notices.discard)

    def credentials_for(self, service: str) -> Mapping[str, str]:
        self._before_verify()
        if not self.verifier.enrolled:
            raise NotEnrolled()
        return self.vault.get(service) if self.vault.has(service) else {}

    # -- notifiers ---------------------------------------------------------------------

    def _open_notifiers(self, config: AirlockConfig, enrolled: bool) -> dict[str, Notifier]:
        from airlock.errors import ConfigError
        from airlock.framework.connectors import validate_settings

        available = get_notifiers(self.pm)
        # Installed notifiers may receive credentials before they are configured:
        # `airlock telegram setup` stores the token first, then writes the config.
        self.installed_notifiers = set(available)
        opened: dict[str, Notifier] = {}
        for name in config.approvals.notifiers:
            cls = available.get(name)
            if cls is None:
                from airlock.gateway.services import missing_component_hint

                raise ConfigError(
                    f"approvals.notifiers names {name!r}, which is not installed",
                    hint=missing_component_hint(name, available, "notifier"),
                )
            try:
                settings = validate_settings(
                    cls.Settings, config.notifiers.get(name, {}), where=f"notifiers.{name}"
                )
            except InvalidInput as exc:
                raise ConfigError(
                    exc.message,
                    field=exc.field,
                    hint=f"see `airlock {name} setup` or docs/configuration.md",
                ) from None
            stored = self.vault.get(name) if enrolled and self.vault.has(name) else {}
            opened[name] = cls(settings, cls.Credentials.model_validate(stored))
        return opened

    # -- answers -----------------------------------------------------------------------

    def status(self, peer: Peer) -> DaemonStatus:
        from datetime import UTC, datetime

        self.refresh_totp()
        self.gateway.uses.flush()
        problems = self.gateway.auth_problems
        lock = self.verifier.lock_state()
        return DaemonStatus(
            version=__version__,
            mode=self.paths.mode.value,
            totp_enrolled=self.verifier.enrolled or self.keeper.locked,
            passphrase_locked=self.keeper.locked,
            locked=lock.locked,
            locked_until=datetime.fromtimestamp(lock.locked_until, UTC)
            if lock.locked_until
            else None,
            pending=len(self.approvals.pending(peer)),
            sessions=self.session_infos(peer.uid),
            services=sorted(self.services),
            notifiers=[NotifierHealth(**h) for h in self.channels.health()],
            service_health=[
                ServiceHealth(name=name, ok=name not in problems, detail=problems.get(name, ""))
                for name in sorted(self.services)
            ],
            pid=os.getpid(),
            audit_seq=self.audit.last_seq,
            config_changed=self.config_changed(),
        )

    def config_changed(self) -> bool:
        """Whether config.yaml on disk differs from what this daemon loaded at start."""
        return self.config_digest is not None and (
            config_digest(self.paths.config_file) != self.config_digest
        )

    def explain_unknown_service(self, exc: NotFound) -> NotFound:
        """A service this daemon does not know may be one added to the file since."""
        if exc.message.startswith("no service named") and self.config_changed():
            return NotFound(exc.message, field=exc.field, hint=CONFIG_CHANGED)
        return exc

    def session_infos(self, uid: int) -> list[SessionInfo]:
        """The caller's active sessions, a spend session with its budget used and left."""
        budgets = self.gateway.priced.budgets
        return [
            session_info(s, budgets.state(s.id) if s.access == "spend" else None)
            for s in self.sessions.list(uid)
        ]

    async def service_list(self) -> ServiceList:
        return ServiceList(
            services=[
                ServiceInfo(
                    name=name,
                    connector=svc.connector.name,
                    title=svc.connector.title,
                    operations=[
                        OperationInfo(
                            name=op.name,
                            access=op.access.value,
                            description=op.description,
                            params_schema=op.params_schema(),
                            result_schema=op.result_schema(),
                            destructive=op.destructive,
                            open_world=svc.connector.open_world,
                        )
                        for op in await self._operations(svc)
                    ],
                    tool_aliases=[
                        ToolAliasInfo(
                            tool=a.tool,
                            operation=a.operation,
                            description=a.description,
                            args=dict(a.args),
                        )
                        for a in svc.connector.tool_aliases
                    ],
                )
                for name, svc in sorted(self.services.items())
            ]
        )

    async def _operations(self, service: Service) -> list[OperationSpec]:
        """The service's declared operations and those its connector lists when it opens
        (opening it the first time). One that cannot open lists its declared ones only."""
        declared = list(service.connector.operations.values())
        if not service.connector.lists_operations:
            return declared
        if self.clock.now() < self._unlisted_until.get(service.name, 0.0):
            return declared
        try:
            listed = await self.gateway.pool.listed(service.name)
        except Exception as exc:
            # An AirlockError's message is written for the agent, so it holds no secret.
            detail = exc.message if isinstance(exc, AirlockError) else type(exc).__name__
            log.warning("service_operations_unlisted", service=service.name, error=detail)
            # Clients ask for the list every few seconds: a server that cannot start is
            # not started again for each of them (an operation still tries at once).
            self._unlisted_until[service.name] = self.clock.now() + UNLISTED_RETRY
            return declared
        return declared + list(listed.values())

    async def set_credentials(
        self, service: str, totp_code: str, fields: dict[str, str], peer: Peer
    ) -> CredentialsOut:
        target = self._credential_target(service)
        await self._check_code(totp_code, peer, CodePurpose.credential("set_credentials", service))
        check: dict[str, Any] | None = None
        if isinstance(target, Service):
            credentials = target.connector.parse_credentials(fields, service=service)
            connector = target.connector(target.settings, credentials, service=service)
            try:
                await connector.open()
                result = await connector.check()
                check = result.model_dump()
            finally:
                await connector.close()
        self.vault.set(service, fields)
        self.gateway.auth_problems.pop(service, None)
        await self.gateway.pool.discard(service)
        await self.audit.append(
            "credentials_changed",
            **peer.audit_fields(),
            service=service,
            fields=sorted(fields),
            action="set",
        )
        return CredentialsOut(service=service, fields=sorted(fields), check=check)

    async def get_credential(self, service: str, field: str, totp_code: str, peer: Peer) -> str:
        self._credential_target(service)
        purpose = CodePurpose.credential("read_credential", service, field)
        await self._check_code(totp_code, peer, purpose)
        stored = self.vault.get(service) if self.vault.has(service) else {}
        if field not in stored:
            raise NotFound(f"no credential field {field[:40]!r} for {service}")
        await self.audit.append(
            "credentials_read", **peer.audit_fields(), service=service, field=field
        )
        return stored[field]

    async def remove_credentials(self, service: str, totp_code: str, peer: Peer) -> CredentialsOut:
        self._credential_target(service)
        purpose = CodePurpose.credential("remove_credentials", service)
        await self._check_code(totp_code, peer, purpose)
        if not self.vault.has(service):
            raise NotFound(f"no credentials stored for {service}")
        fields = sorted(self.vault.get(service))
        self.vault.remove(service)
        await self.gateway.pool.discard(service)
        await self.audit.append(
            "credentials_changed",
            **peer.audit_fields(),
            service=service,
            fields=fields,
            action="remove",
        )
        return CredentialsOut(service=service, fields=[])

    async def _check_code(self, code: str, peer: Peer, purpose: CodePurpose) -> None:
        """A credential action's code, through the same audited path as approvals."""
        self.refresh_totp()
        await self.codes.check(code, channel="terminal", purpose=purpose, actor=peer.audit_fields())

    def credential_listing(self) -> list[dict[str, Any]]:
        self.refresh_totp()
        stored = set(self.vault.services()) if self.verifier.enrolled else set()
        # Only what takes credentials: a Maildir or the console has nothing to store.
        wanted = {
            n
            for n, svc in self.services.items()
            if svc.connector.credentials_model(svc.settings).model_fields
        }
        wanted |= {n for n, ntf in self.notifiers.items() if type(ntf).Credentials.model_fields}
        names = sorted(wanted | stored)
        return [{"service": n, "stored": n in stored} for n in names]

    def _credential_target(self, name: str) -> Service | str:
        if name in self.services:
            return self.services[name]
        if name in self.notifiers or name in self.config.notifiers:
            return name
        if name in self.installed_notifiers:
            return name
        raise NotFound(f"no service or notifier named {name[:40]!r}")

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
        for cut in self.gateway.priced.budgets.settle_cut_off():
            # A call in flight when the daemon stopped may have reached the service.
            await self.audit.append(
                "budget_settled_at_reservation",
                session=cut.session_id,
                cost_usd=usd(cut.amount_nano),
                reason="the call was cut off by a daemon stop",
            )
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        self._start_listening()

    def _start_listening(self) -> None:
        self._listeners = [
            asyncio.create_task(self._listen(name, notifier))
            for name, notifier in self.notifiers.items()
        ]

    async def reload(self) -> AirlockConfig:
        """Re-read the config, services and notifiers; sessions and pending requests stay.

        A config that does not load (or names a missing plugin) raises ``ConfigError``
        and the running one stays in use.
        """
        async with self._reloading:
            digest = config_digest(self.paths.config_file)
            parts = self._assemble(load_config(self.paths.config_file))
            await self._swap(parts)
            self.config_digest = digest
            await self.audit.append(
                "config_reloaded", services=sorted(self.services), notifiers=sorted(self.notifiers)
            )
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
            await self._swap(self._assemble(self.config))
            await self.audit.append("daemon_unlocked", **peer.audit_fields())

    async def _swap(self, parts: Parts) -> None:
        """Put freshly built parts in use and retire the old ones."""
        old_approvals, old_pool, old_notifiers = self.approvals, self.gateway.pool, self.notifiers
        old_listeners = self._listeners
        self.gateway.uses.flush()
        self._use(parts)
        self._unlisted_until.clear()  # a reloaded service may list its operations now
        self._start_listening()
        for task in old_listeners:
            task.cancel()
        await asyncio.gather(*old_listeners, return_exceptions=True)
        await old_approvals.close()
        await old_pool.close_all()
        await self._close_notifiers(old_notifiers)
        for hook in self.on_reload:
            hook(parts.config)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL)
            try:
                self.gateway.uses.flush()
                self.store.raise_audit_anchor(self.audit.last_seq)
                await self.approvals.expire_due()
                await self.reenrolments.expire_due()
                await self.approvals.purge_finished()
                await self.audit.drop_over_budget(self.config.audit.max_bytes)
                keep = {
                    svc
                    for s in self.store.list_sessions(active_at=self.clock.now())
                    for svc in s.services
                }
                await self.gateway.pool.close_idle(keep=keep, idle_seconds=IDLE_CLOSE_SECONDS)
            except Exception as exc:
                log.error("housekeeping_failed", error=type(exc).__name__)

    async def _listen(self, name: str, notifier: Notifier) -> None:
        try:
            async for reply in notifier.replies():
                try:
                    await self.replies.handle(name, reply)
                except Exception as exc:  # one failed answer must not stop the listening
                    log.error("notifier_reply_failed", notifier=name, error=type(exc).__name__)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("notifier_listen_failed", notifier=name, error=type(exc).__name__)

    async def _close_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        for notifier in notifiers.values():
            try:
                await notifier.close()
            except Exception as exc:
                log.warning(
                    "notifier_close_failed",
                    notifier=type(notifier).__name__,
                    error=type(exc).__name__,
                )

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._listeners, *self._notices]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.approvals.close()
        self.gateway.uses.flush()
        await self.gateway.pool.close_all()
        await self._close_notifiers(self.notifiers)
        await self.audit.append("daemon_stopped", pid=os.getpid())
        self.store.raise_audit_anchor(self.audit.last_seq)
        self.audit.close()
        self.store.close()
