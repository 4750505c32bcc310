"""The dashboard's pure parts: where it may listen, which Host it answers, CSV cells,
chart geometry. (Its pages are tested against a real daemon in tests/e2e.)"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from airlock.dashboard.activity import BAR, HEIGHT, HOURS, chart
from airlock.dashboard.address import ListenAddress, host_allowed, parse_listen
from airlock.dashboard.audit_view import to_csv
from airlock.dashboard.pages import VALUE_SHOWN, _params
from airlock.dashboard.peer_uid import peer_uid
from airlock.errors import ConfigError
from airlock.settings.config import AirlockConfig


def test_the_default_is_loopback_port_8410() -> None:
    settings = AirlockConfig().dashboard
    assert settings.listen == "127.0.0.1:8410"
    assert settings.session_ttl == 8 * 3600
    assert parse_listen(settings.listen, allow_remote=False) == ListenAddress("127.0.0.1", 8410)


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_off_disables(value: str) -> None:
    assert parse_listen(value, allow_remote=False) is None


@pytest.mark.parametrize(
    ("value", "host", "port"),
    [
        ("localhost:9000", "localhost", 9000),
        ("[::1]:8410", "::1", 8410),
        ("127.0.0.2:0", "127.0.0.2", 0),
    ],
)
def test_loopback_forms(value: str, host: str, port: int) -> None:
    assert parse_listen(value, allow_remote=False) == ListenAddress(host, port)


@pytest.mark.parametrize("value", ["0.0.0.0:8410", "192.168.1.5:8410", "[::]:8410"])
def test_a_network_address_needs_allow_remote(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_listen(value, allow_remote=False)
    assert refused.value.field == "dashboard.listen"
    assert "allow_remote" in (refused.value.hint or "")
    assert parse_listen(value, allow_remote=True) is not None


@pytest.mark.parametrize("value", ["8410", "example.com:8410", "127.0.0.1:", "127.0.0.1:99999", ""])
def test_nonsense_is_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"dashboard\.listen"):
        parse_listen(value, allow_remote=True)


@pytest.mark.parametrize(
    ("host", "remote", "allowed"),
    [
        ("127.0.0.1:8410", False, True),
        ("localhost:8410", False, True),
        ("[::1]:8410", False, True),
        ("127.0.0.1:8411", False, False),
        ("evil.example:8410", False, False),
        ("localhost.evil.example:8410", False, False),
        ("192.168.1.5:8410", False, False),
        ("192.168.1.5:8410", True, True),
        ("evil.example:8410", True, False),  # DNS rebinding needs a name: never one
        ("127.0.0.1", False, False),
        ("", False, False),
    ],
)
def test_host_header(host: str, remote: bool, allowed: bool) -> None:
    assert host_allowed(host, port=8410, remote=remote) is allowed


def test_the_address_to_browse() -> None:
    assert ListenAddress("127.0.0.1", 0).url(5555) == "http://127.0.0.1:5555/"
    assert ListenAddress("::1", 8410).url() == "http://[::1]:8410/"
    assert ListenAddress("0.0.0.0", 8410).url() == "http://127.0.0.1:8410/"  # noqa: S104


@pytest.mark.parametrize("text", ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\t=1"])
def test_csv_cells_never_start_a_formula(text: str) -> None:
    out = to_csv([{"seq": 1, "event": "access_requested", "reason": text}])
    assert f"'{text}" in out


def test_chart_stacks_refusals_in_red_and_keeps_a_single_one_visible() -> None:
    ok = [0] * HOURS
    refused = [0] * HOURS
    ok[10], refused[10], refused[20] = 100, 0, 1
    drawn = chart({"ok": ok, "refused": refused})
    assert drawn["peak"] == 100
    assert drawn["ok"] == 100
    assert drawn["refused"] == 1
    kinds = {(b["x"], b["kind"]): b for b in drawn["bars"]}
    assert kinds[(10 * BAR, "ok")]["h"] == HEIGHT
    assert kinds[(20 * BAR, "refused")]["h"] == 1


def test_a_person_session_runs_no_operation_and_no_agent_can_ask_for_one(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from airlock.api import AccessRequestIn
    from airlock.common.clock import FakeClock
    from airlock.errors import Unauthenticated
    from airlock.models import Access
    from airlock.security.sessions import SessionManager, hash_token, new_token
    from airlock.settings.config import SessionsConfig
    from airlock.state.store import Session, StateStore

    with pytest.raises(ValidationError):
        AccessRequestIn.model_validate({"services": ["mail"], "reason": "x", "access": "person"})
    assert not Access.PERSON.allows(Access.READ)
    assert not Access.WRITE.allows(Access.PERSON)
    clock = FakeClock()
    with StateStore(tmp_path / "state.db") as store:
        token = new_token()  # even an agent-shaped token on a person session is refused
        store.insert_session(
            Session(
                id="ses_person",
                token_hash=hash_token(token),
                services=("dashboard",),
                access=Access.PERSON,
                uid=1000,
                created_at=clock.now(),
                expires_at=clock.now() + 3600,
            )
        )
        with pytest.raises(Unauthenticated):
            SessionManager(store, SessionsConfig(), clock).authenticate(token, 1000)


def test_a_write_shows_every_parameter_with_long_values_cut_each_on_its_own() -> None:
    shown = _params({"body": "x" * 50_000, "to": "mallory@evil.example", "cc": ["a\u202eb"]})
    lines = shown.splitlines()
    assert [line.split(":")[0] for line in lines] == ['"body"', '"cc"', '"to"']
    assert lines[0].startswith('"body": "' + "x" * (VALUE_SHOWN - 1))
    assert lines[0].endswith(f"… ({50_002 - VALUE_SHOWN} more characters: airlock pending --json)")
    assert lines[1] == '"cc": ["a\\u202eb"]'
    assert lines[2] == '"to": "mallory@evil.example"'
    assert shown.replace("…", "").isascii()


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_the_kernel_names_the_user_on_the_other_end_of_a_loopback_connection(
    family: int, host: str
) -> None:
    try:
        listener = socket.socket(family)
        listener.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} here")
    with listener:
        listener.listen(1)
        with socket.create_connection(listener.getsockname()[:2]) as client:
            accepted, _ = listener.accept()
            with accepted:
                ours, theirs = accepted.getsockname()[:2], accepted.getpeername()[:2]
                assert peer_uid(family, ours, theirs) == os.getuid()
                # The server's own end is not the client's: the direction matters.
                assert peer_uid(family, theirs, (host, 1)) is None
                assert client.getsockname()[:2] == theirs


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_an_ipv4_client_of_a_dual_stack_listener_is_found_too() -> None:
    """Listening on ``::`` (dashboard.allow_remote) takes IPv4 connections too: their
    server end reads ``::ffff:127.0.0.1``, their client end is listed as plain IPv4."""
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", 0))
    except OSError:
        pytest.skip("no dual-stack IPv6 here")
    with listener:
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = listener.accept()
            with accepted:
                ours, theirs = accepted.getsockname()[:2], accepted.getpeername()[:2]
                assert theirs[0] == "::ffff:127.0.0.1"
                assert peer_uid(socket.AF_INET6, ours, theirs) == os.getuid()
