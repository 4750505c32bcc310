"""The Python client against a daemon speaking the documented wire format on a real socket."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fake_daemon import GOOD_TOTP, FakeDaemon, running

from airlock import errors
from airlock.client import AirlockClient, StillPending, SyncAirlockClient, WaitStatus

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sock") as d:
        yield Path(d)


@pytest.fixture
def daemon(sock_dir: Path) -> Iterator[FakeDaemon]:
    with running(sock_dir / "airlock.sock") as fake:
        yield fake


def client(daemon: FakeDaemon, **kw: Any) -> AirlockClient:
    return AirlockClient(daemon.socket, **kw)


# -- asking for access -----------------------------------------------------------


def test_request_access_then_call_a_service_operation_as_a_method(daemon: FakeDaemon) -> None:
    daemon.answer_after_polls = 2

    async def scenario() -> Any:
        async with client(daemon) as airlock:
            held = await airlock.request_access(services=["gmail"], reason="summarise mail")
            assert held.services == ("gmail",)
            return await airlock.gmail.list_messages(limit=10)

    result = run(scenario)
    assert result["echo"] == {"limit": 10}
    (req,) = daemon.requests
    assert req.body.services == ["gmail"]
    assert req.body.reason == "summarise mail"
    assert req.polls == 3
    assert [(c.service, c.operation) for c in daemon.calls] == [("gmail", "list_messages")]


def test_a_denied_request_raises_access_denied(daemon: FakeDaemon) -> None:
    daemon.answer = "deny"

    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "read mail")

    with pytest.raises(errors.AccessDenied, match=r"denied request C\d+"):
        run(scenario)


def test_an_expired_request_raises_approval_timed_out(daemon: FakeDaemon) -> None:
    daemon.answer = "expire"

    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "read mail")

    with pytest.raises(errors.ApprovalTimedOut) as caught:
        run(scenario)
    assert caught.value.exit_code == 4


def test_nobody_answering_within_the_wait_raises_approval_timed_out(daemon: FakeDaemon) -> None:
    daemon.answer = "ignore"

    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "read mail", wait=0)

    with pytest.raises(errors.ApprovalTimedOut, match=r"still waiting .* after 0s") as caught:
        run(scenario)
    assert "airlock approve" in (caught.value.hint or "")
    assert isinstance(caught.value, StillPending)
    assert caught.value.request_code == daemon.requests[0].code


def test_asking_again_after_the_wait_ran_out_resumes_the_same_request(
    daemon: FakeDaemon,
) -> None:
    daemon.answer = "ignore"

    async def scenario() -> str:
        async with client(daemon) as airlock:
            with pytest.raises(StillPending):
                await airlock.request_access(["gmail"], "read mail", wait=0)
            daemon.answer = "approve"
            held = await airlock.request_access(["gmail"], "read mail again", wait=5)
            return held.id

    assert run(scenario)
    assert len(daemon.requests) == 1


def test_the_wait_reports_the_code_to_show_the_person(daemon: FakeDaemon) -> None:
    daemon.answer_after_polls = 2
    seen: list[WaitStatus] = []

    async def note(status: WaitStatus) -> None:
        seen.append(status)

    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "read mail", on_wait=note)

    run(scenario)
    code = daemon.requests[0].code
    assert [s.code for s in seen] == [code, code, code]
    assert f"airlock approve {code}" in seen[0].message()


def test_ttl_access_and_agent_reach_the_request(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon, agent="my-script") as airlock:
            await airlock.request_access(["calendar"], "plan the day", ttl=900, access="write")

    run(scenario)
    body = daemon.requests[0].body
    assert (body.ttl, body.access, body.agent) == ("900s", "write", "my-script")


def test_a_bad_request_names_the_field_at_fault(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "x" * 2000)

    # Refused before it leaves, by the same model the daemon validates with.
    with pytest.raises(errors.InvalidInput, match="reason") as caught:
        run(scenario)
    assert caught.value.field == "reason"
    assert daemon.requests == []


# -- services as attributes --------------------------------------------------------


def test_unknown_service_and_operation_are_attribute_errors_listing_what_exists(
    daemon: FakeDaemon,
) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            with pytest.raises(AttributeError, match="configured: calendar, gmail, work-mail"):
                await airlock.gmial.list_messages()
            await airlock.services()
            with pytest.raises(AttributeError, match="no service 'gmial'"):
                _ = airlock.gmial
            with pytest.raises(AttributeError, match="it has: count_unread, get_message"):
                _ = airlock.gmail.list_mesages
            assert "list_messages" in dir(airlock.gmail)
            assert "gmail" in dir(airlock)

    run(scenario)


def test_unknown_keywords_are_a_type_error_naming_the_parameters(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "read")
            with pytest.raises(TypeError, match="it takes: folder, limit, unread_only"):
                await airlock.gmail.list_messages(lmit=5)

    run(scenario)
    assert daemon.calls == []


def test_a_service_name_with_a_dash_is_reached_through_service(daemon: FakeDaemon) -> None:
    async def scenario() -> Any:
        async with client(daemon) as airlock:
            await airlock.request_access(["work-mail"], "read")
            return await airlock.service("work-mail").count_unread()

    assert run(scenario) == 3


def test_calling_without_a_session_says_to_request_access(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.gmail.list_messages()

    with pytest.raises(errors.Unauthenticated) as caught:
        run(scenario)
    assert "request_access(services=['gmail']" in (caught.value.hint or "")
    assert daemon.calls == []


def test_sessions_are_per_service(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "mail")
            await airlock.request_access(["calendar"], "plan")
            await airlock.calendar.today()
            await airlock.gmail.count_unread()

    run(scenario)
    by_op = {c.operation: c.session_id for c in daemon.calls}
    assert by_op["today"] != by_op["count_unread"]


# -- writes ----------------------------------------------------------------------


def test_a_write_gets_its_own_approval_for_its_exact_parameters_then_runs_once(
    daemon: FakeDaemon,
) -> None:
    async def scenario() -> Any:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "tidy the inbox")
            return await airlock.gmail.mark_read(id="7.42")

    result = run(scenario)
    assert result["echo"] == {"id": "7.42"}
    read, write = daemon.requests
    assert write.body.access == "write"
    assert write.body.reason == "tidy the inbox"
    assert write.body.operation is not None
    assert write.body.operation.model_dump() == {
        "service": "gmail",
        "name": "mark_read",
        "params": {"id": "7.42"},
    }
    # The one-use session did the call; the read session was not used for it.
    assert [c.operation for c in daemon.calls] == ["mark_read"]
    assert daemon.calls[0].session_id not in {None}
    assert read.collected


def test_a_call_the_daemon_answers_approval_required_is_approved_and_retried_once(
    daemon: FakeDaemon,
) -> None:
    daemon.needs_approval = {"get_message"}

    async def scenario() -> Any:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "read one message")
            return await airlock.gmail.get_message(id="9.9")

    assert run(scenario)["echo"] == {"id": "9.9"}
    _read, approval = daemon.requests
    assert approval.body.operation is not None
    assert (approval.body.operation.name, approval.body.operation.params) == (
        "get_message",
        {"id": "9.9"},
    )
    assert [c.operation for c in daemon.calls] == ["get_message"]


def test_a_write_without_any_session_asks_only_for_the_write(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.gmail.mark_read(id="1.1")

    run(scenario)
    (write,) = daemon.requests
    assert write.body.operation is not None
    assert write.body.reason == "gmail.mark_read called by the agent"


def test_a_denied_write_runs_nothing(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.gmail.mark_read(id="1.1")

    daemon.answer = "deny"
    with pytest.raises(errors.AccessDenied):
        run(scenario)
    assert daemon.calls == []


# -- errors ----------------------------------------------------------------------

STATUSES = [
    (400, "invalid_input", errors.InvalidInput),
    (401, "unauthenticated", errors.Unauthenticated),
    (403, "forbidden", errors.Forbidden),
    (403, "denied", errors.AccessDenied),
    (403, "approval_required", errors.ApprovalRequired),
    (403, "invalid_code", errors.InvalidCode),
    (404, "not_found", errors.NotFound),
    (409, "not_pending", errors.NotPending),
    (409, "totp_not_enrolled", errors.NotEnrolled),
    (413, "payload_too_large", errors.PayloadTooLarge),
    (423, "approvals_locked", errors.ApprovalsLocked),
    (429, "rate_limited", errors.RateLimited),
    (502, "service_error", errors.ConnectorError),
    (503, "vault_locked", errors.VaultLocked),
]


@pytest.mark.parametrize(("status", "code", "cls"), STATUSES)
def test_every_error_answer_becomes_its_exception(
    daemon: FakeDaemon, status: int, code: str, cls: type[errors.AirlockError]
) -> None:
    body = FakeDaemon.error(status, code, "what went wrong", hint="what to do", field="f").body
    assert isinstance(body, bytes)
    daemon.fail_next = (status, body)

    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.status()

    with pytest.raises(cls) as caught:
        run(scenario)
    assert type(caught.value) is cls
    assert (caught.value.message, caught.value.hint, caught.value.field) == (
        "what went wrong",
        "what to do",
        "f",
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.InvalidInput),
        (401, errors.Unauthenticated),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.NotPending),
        (413, errors.PayloadTooLarge),
        (423, errors.ApprovalsLocked),
        (429, errors.RateLimited),
        (500, errors.AirlockError),
    ],
)
def test_an_error_without_a_known_code_is_mapped_by_its_status(
    daemon: FakeDaemon, status: int, cls: type[errors.AirlockError]
) -> None:
    daemon.fail_next = (status, b"Request Entity Too Large")

    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.status()

    with pytest.raises(cls, match=f"answered {status}") as caught:
        run(scenario)
    assert type(caught.value) is cls


def test_no_socket_is_daemon_unreachable_with_the_hint_to_start_it(sock_dir: Path) -> None:
    async def scenario() -> None:
        async with AirlockClient(sock_dir / "missing.sock") as airlock:
            await airlock.status()

    with pytest.raises(errors.DaemonUnreachable, match="no such file") as caught:
        run(scenario)
    assert caught.value.hint == "start it with `airlock serve`"
    assert caught.value.exit_code == 5


def test_a_socket_nobody_listens_on_is_daemon_unreachable(sock_dir: Path) -> None:
    path = sock_dir / "dead.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))

    async def scenario() -> None:
        async with AirlockClient(path) as airlock:
            await airlock.services()

    with pytest.raises(errors.DaemonUnreachable, match="connection refused"):
        run(scenario)


def test_the_socket_comes_from_airlock_socket(
    daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRLOCK_SOCKET", str(daemon.socket))

    async def scenario() -> str:
        async with AirlockClient() as airlock:
            return (await airlock.status()).version

    assert run(scenario) == "0.1.0"


# -- sessions end with the client -------------------------------------------------


def test_the_session_is_revoked_on_exit(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "mail")
            await airlock.request_access(["calendar"], "plan")

    run(scenario)
    assert sorted(daemon.revoked) == sorted(s for s in daemon.revoked)
    assert len(daemon.revoked) == 2
    assert daemon.sessions == {}


def test_the_session_is_revoked_when_the_body_raises(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "mail")
            raise KeyError("the caller's own error")

    with pytest.raises(KeyError, match="caller's own error"):
        run(scenario)
    assert len(daemon.revoked) == 1


def test_a_revoked_session_is_dropped_and_the_caller_told(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            await airlock.request_access(["gmail"], "mail")
            daemon.sessions.clear()  # the person ran `airlock revoke --all`
            with pytest.raises(errors.Unauthenticated):
                await airlock.gmail.count_unread()
            assert airlock.held_sessions() == []

    run(scenario)


# -- secrets stay secret -----------------------------------------------------------


def test_the_token_and_claim_never_appear_in_repr_str_or_errors(daemon: FakeDaemon) -> None:
    shown: list[str] = []

    async def scenario() -> None:
        async with client(daemon) as airlock:
            held = await airlock.request_access(["gmail"], "mail")
            shown.extend([repr(airlock), str(airlock), repr(held), str(held)])
            shown.append(repr(airlock.held_sessions()))
            shown.append(repr(airlock.gmail) + repr(airlock.gmail.list_messages))
            for attempt in (airlock.gmail.get_message(), airlock.approve("C001", "000000")):
                try:
                    await attempt
                except errors.AirlockError as exc:
                    shown.append(f"{exc!r} {exc} {exc.hint}")

    run(scenario)
    secrets = daemon.tokens + [r.claim for r in daemon.requests]
    assert secrets
    assert len(shown) >= 7
    for text in shown:
        for secret in secrets:
            assert secret not in text
    assert "alk_" not in "".join(shown)


# -- the person's side --------------------------------------------------------------


def test_pending_approve_deny_sessions_and_revoke(daemon: FakeDaemon) -> None:
    daemon.answer = "ignore"

    async def scenario() -> None:
        async with client(daemon) as agent, client(daemon) as person:
            first = await agent.submit_request(["gmail"], "mail")
            second = await agent.submit_request(["calendar"], "plan")
            pending = await person.pending()
            assert [p.code for p in pending.requests] == [first.code, second.code]
            with pytest.raises(errors.InvalidCode):
                await person.approve(first.code, "000000")
            assert (await person.approve(first.code, GOOD_TOTP)).status == "approved"
            assert (await person.deny(second.id)).status == "denied"
            grant = await agent.await_approval(first, wait=5)
            assert grant.token.startswith("alk_")
            with pytest.raises(errors.AccessDenied):
                await agent.await_approval(second, wait=5)
            out = await agent.call("gmail", "count_unread", token=grant.token)
            assert (out.result, out.untrusted, out.service) == (3, True, "gmail")
            listed = await person.sessions()
            assert [s.id for s in listed.sessions] == [grant.id]
            assert (await person.revoke(grant.id)).revoked == [grant.id]
            with pytest.raises(errors.NotFound):
                await person.revoke(grant.id)
            assert (await person.revoke_all()).revoked == []

    run(scenario)


def test_credentials_and_audit(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as person:
            added = await person.add_credentials("gmail", {"password": "s3cret"}, totp=GOOD_TOTP)
            assert added.fields == ["password"]
            assert added.check == {"ok": True, "summary": "connected: 3 messages"}
            listing = await person.list_credentials()
            assert {"service": "gmail", "stored": True} in listing
            value = await person.get_credential("gmail", "password", totp=GOOD_TOTP)
            assert value.value == "s3cret"
            with pytest.raises(errors.InvalidCode):
                await person.get_credential("gmail", "password", totp="999999")
            assert (await person.remove_credentials("gmail", totp=GOOD_TOTP)).fields == ["password"]
            events = await person.audit(since="7d", service="gmail", limit=5)
            assert events.events[0]["query"] == {"since": "7d", "service": "gmail", "limit": "5"}

    run(scenario)


def test_names_in_paths_cannot_reach_another_endpoint(daemon: FakeDaemon) -> None:
    async def scenario() -> None:
        async with client(daemon) as airlock:
            with pytest.raises(errors.NotFound):
                await airlock.revoke("../requests")

    run(scenario)
    assert daemon.seen_paths[-1] == "DELETE /v1/sessions/../requests"


# -- the blocking twin ----------------------------------------------------------------


def test_the_sync_client_does_the_same_without_async(daemon: FakeDaemon) -> None:
    with SyncAirlockClient(daemon.socket) as airlock:
        assert airlock.status().pid == 4242
        airlock.request_access(services=["gmail"], reason="a script")
        assert airlock.gmail.count_unread() == 3
        assert airlock.service("work-mail") is not None
        assert airlock.gmail.mark_read(id="2.2")["echo"] == {"id": "2.2"}
        with pytest.raises(AttributeError, match="no service 'nope'"):
            _ = airlock.nope
        assert "alk_" not in repr(airlock)
    assert len(daemon.revoked) == 1
    airlock.close()  # closing twice is harmless


def test_the_sync_client_raises_the_same_errors(sock_dir: Path) -> None:
    with (
        SyncAirlockClient(sock_dir / "missing.sock") as airlock,
        pytest.raises(errors.DaemonUnreachable),
    ):
        airlock.services()


def test_the_sync_client_works_inside_a_running_event_loop(daemon: FakeDaemon) -> None:
    async def notebook_cell() -> int:
        with SyncAirlockClient(daemon.socket) as airlock:
            return airlock.status().pid

    assert asyncio.run(notebook_cell()) == 4242
