"""``airlock signal setup`` as a person runs it: it checks the REST API (or signal-cli's
socket), sends a test message, and finishes when the person quote-replies to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.signal.signal_api_server import BOT, PERSON, PERSON_UUID, STRANGER, SignalApiServer
from tests.signal.signal_cli_socket import SignalCliSocketServer

TEST_WORDING = "this is a test"


def setup(home: Path, server: SignalApiServer, *args: str) -> subprocess.Popen[str]:
    """``airlock signal setup`` against *server*: its socket when it is signal-cli's."""
    way_in = (
        ["--socket", server.path]
        if isinstance(server, SignalCliSocketServer)
        else ["--api-base", server.url]
    )
    command = [sys.executable, "-m", "airlock", "signal", "setup", *way_in]
    return subprocess.Popen(
        [*command, "--number", BOT, "--recipient", PERSON, "--wait", "10", *args],
        env={**os.environ, "AIRLOCK_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def the_test_message(server: SignalApiServer) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while not (sent := [m for m in list(server.sent) if TEST_WORDING in m["message"]]):
        assert time.monotonic() < deadline, "no test message was sent"
        time.sleep(0.02)
    return sent[0]


PERSONS_SETTINGS = {"number": BOT, "recipient": PERSON, "recipient_uuid": PERSON_UUID}


def saved_settings(home: Path) -> Any:
    """What setup wrote into the config for ``notifiers.signal``."""
    return yaml.safe_load((home / "config.yaml").read_text())["notifiers"]["signal"]


def answer_the_test_message(server: SignalApiServer, *, source: str = PERSON) -> None:
    server.quote_reply("ok", the_test_message(server)["timestamp"], source=source)


def test_setup_exchanges_a_test_message_and_writes_the_config(
    tmp_path: Path, rest_api: SignalApiServer
) -> None:
    signal_api = rest_api
    running = setup(tmp_path, signal_api, "--write-config")
    answer_the_test_message(signal_api, source=STRANGER)  # not who we wait for
    answer_the_test_message(signal_api)
    out, err = running.communicate(timeout=30)
    assert running.returncode == 0, err
    assert f"(mode {signal_api.mode})" in out
    assert "Signal works both ways" in out
    assert saved_settings(tmp_path) == {"api_base": signal_api.url, **PERSONS_SETTINGS}
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["approvals"]["notifiers"] == ["console", "signal"]


def test_an_unregistered_number_is_refused(tmp_path: Path) -> None:
    server = SignalApiServer()
    try:
        command = [sys.executable, "-m", "airlock", "signal", "setup", "--api-base", server.url]
        result = subprocess.run(
            [*command, "--number", "+15559999999", "--recipient", PERSON],
            env={**os.environ, "AIRLOCK_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        server.close()
    assert result.returncode == 1
    assert "+15559999999 is not registered in signal-cli-rest-api" in result.stderr
    assert server.sent == []


@pytest.mark.parametrize("accounts", [None, [BOT, "+15550003000"]])
def test_setup_on_signal_clis_socket_writes_the_socket_into_the_config(
    tmp_path: Path, accounts: list[str] | None
) -> None:
    server = SignalCliSocketServer()
    server.accounts = accounts  # None: a single-account daemon, which lists none
    try:
        running = setup(tmp_path, server, "--write-config")
        answer_the_test_message(server)
        out, err = running.communicate(timeout=30)
    finally:
        server.close()
    assert running.returncode == 0, err
    assert f"signal-cli 0.13.22 answers at {server.path}" in out
    assert saved_settings(tmp_path) == {"socket": server.path, **PERSONS_SETTINGS}


def test_setup_refuses_a_socket_others_could_reach_or_a_number_it_lacks(tmp_path: Path) -> None:
    open_to_all, lacking = SignalCliSocketServer(socket_mode=0o777), SignalCliSocketServer()
    lacking.accounts = ["+15550003000"]
    try:
        refused = setup(tmp_path, open_to_all).communicate(timeout=30)
        missing = setup(tmp_path, lacking).communicate(timeout=30)
    finally:
        open_to_all.close()
        lacking.close()
    assert "lets other users connect (mode 777)" in refused[1]
    assert open_to_all.requests == []
    assert f"{BOT} is not an account of this signal-cli" in missing[1]
    assert lacking.sent == []
    assert not (tmp_path / "config.yaml").exists()


def set_up_on_a_socket_after(
    home: Path, deliver: Callable[[SignalCliSocketServer, dict[str, Any]], None]
) -> tuple[int, str, str]:
    """``airlock signal setup --socket ... --write-config``, where *deliver* hands over
    items once the test message (given to it) went out, before the person quote-replies
    to it; the command's exit code, stdout and stderr."""
    server = SignalCliSocketServer()
    try:
        running = setup(home, server, "--write-config")
        deliver(server, the_test_message(server))
        answer_the_test_message(server)
        out, err = running.communicate(timeout=30)
    finally:
        server.close()
    return running.returncode, out, err


def test_setup_skips_items_of_a_broken_signal_cli_and_still_hears_the_person(
    tmp_path: Path,
) -> None:
    """Whatever signal-cli hands over is read with care: an item whose envelope, message
    or quote is not an object is passed over (it was a traceback that ended setup), and
    the person's quote-reply after it still finishes setup."""

    def broken_items(server: SignalCliSocketServer, sent: dict[str, Any]) -> None:
        for envelope in ("x", {"dataMessage": "x"}, {"dataMessage": {"quote": ["x"]}}):
            server.item({"envelope": envelope, "account": BOT})

    returncode, out, err = set_up_on_a_socket_after(tmp_path, broken_items)
    assert returncode == 0, err
    assert "Traceback" not in err
    assert "Signal works both ways" in out
    assert saved_settings(tmp_path)["recipient_uuid"] == PERSON_UUID


def test_what_the_rest_api_says_about_itself_reaches_the_terminal_sanitised(
    tmp_path: Path,
) -> None:
    """Any local user can listen on the REST API's loopback port first: the version it
    claims is shown as one line of text, never as terminal escapes or a line of its own."""
    server = SignalApiServer()
    server.version = "0.100\x1b]0;owned\x07\x1b[2J\nyour reply came back: Signal works both ways"
    try:
        running = setup(tmp_path, server)
        answer_the_test_message(server)
        out, err = running.communicate(timeout=30)
    finally:
        server.close()
    assert running.returncode == 0, err
    assert "\x1b" not in out
    assert "\x07" not in out
    (said,) = [line for line in out.splitlines() if line.startswith("signal-cli-rest-api")]
    assert said.startswith("signal-cli-rest-api 0.100 ]0;owned [2J your reply came back")


def test_a_hidden_sender_who_guessed_the_test_message_is_not_taken_for_the_person(
    tmp_path: Path,
) -> None:
    """Signal may hide a sender's number, so setup takes a quote-reply from a hidden
    number as the person's and saves its ACI as theirs. A stranger who guessed the
    test message's timestamp (it is the time setup sent it: an agent user sees when
    setup starts) and quotes it first, with the test message's public wording, is not
    taken for them: the quote must hold what only the test message's recipient saw."""

    def a_guess_first(server: SignalCliSocketServer, sent: dict[str, Any]) -> None:
        guessed = {"id": sent["timestamp"], "text": "Airlock: this is a test."}
        envelope = {
            "source": "agent-aci",
            "sourceNumber": None,
            "sourceUuid": "agent-aci",
            "sourceDevice": 1,
            "timestamp": sent["timestamp"] + 1,
            "dataMessage": {"message": "ok", "quote": guessed},
        }
        server.item({"envelope": envelope, "account": BOT})

    returncode, out, err = set_up_on_a_socket_after(tmp_path, a_guess_first)
    assert returncode == 0, err
    assert "Signal works both ways" in out
    assert saved_settings(tmp_path)["recipient_uuid"] == PERSON_UUID
