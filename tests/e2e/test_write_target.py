"""A write that names its target by id shows the person what that id is ("Acts on: ...")
and never tells the agent (a real daemon, its connector host and a Maildir).

The agent asks to move a message it has no read session for: the prompt shows the
message's subject and sender, while every answer the agent can get, the audit log and the
daemon's log lines say nothing of them."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from daemon_harness import Airlock
from dashboard_support import Browser, start_with_dashboard
from test_gcal import ME, calendar_daemon, google  # noqa: F401  # google: a fixture
from tests.gcal.google_server import GoogleServer

SUBJECT = "Payroll March 7Q2X strictly private"
SENDER = "payroll-7q2x@example.org"
KEY = "1700000100.target0.airlock"
ACTS_ON = "Acts on (the service's text, untrusted): "


def _plant(maildir: Path) -> None:
    msg = EmailMessage()
    msg["From"] = f"Payroll Office <{SENDER}>"
    msg["To"] = "me@example.org"
    msg["Subject"] = SUBJECT
    msg["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    msg.set_content("The figures are attached.")
    (maildir / "cur" / f"{KEY}:2,").write_bytes(bytes(msg))


def _prompt_line(airlock: Airlock, code: str) -> str:
    """The "Acts on" line of request *code*'s prompt, as the console channel printed it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = airlock.daemon.log.read_text()
        start = log.find(f"Airlock: approve write {code}?")
        if start >= 0:
            block = log[start:].split("Reply with your 6-digit code", 1)[0]
            if "Fingerprint:" in block:
                lines = [x for x in block.splitlines() if x.startswith(ACTS_ON)]
                return lines[0][len(ACTS_ON) :] if lines else ""
        time.sleep(0.1)
    raise AssertionError(f"no prompt for {code} in the daemon log")


def _move(message_id: str) -> dict[str, object]:
    params = {"id": message_id, "to_folder": "Archive"}
    return {"service": "mail", "name": "move", "params": params}


def test_an_agent_asking_to_move_a_message_learns_nothing_of_it(airlock: Airlock) -> None:
    _plant(airlock.maildir)
    answers: list[str] = []
    with airlock.client() as agent:
        body = {"services": ["mail"], "reason": "file the newsletter", "operation": _move(KEY)}
        posted = agent.post("/v1/requests", json=body)
        assert posted.status_code == 202, posted.text
        answers.append(posted.text)
        created = posted.json()

        # The person sees what the id is, on its own line, marked as the service's text.
        line = _prompt_line(airlock, created["code"])
        assert line == f"message in INBOX, 2026-03-02, from Payroll Office <{SENDER}>: “{SUBJECT}”"

        # The agent, asking every way it can, does not.
        claim = {"X-Airlock-Claim": created["claim"]}
        answers.append(agent.get("/v1/requests").text)
        answers.append(agent.get(f"/v1/requests/{created['id']}", headers=claim).text)
        answers.append(agent.get(f"/v1/requests/{created['id']}").text)  # no claim: an error
        joined = agent.post("/v1/requests", json=body)  # asked again: joins, a new claim
        answers.append(joined.text)
        answers.append(agent.get("/v1/sessions").text)
        answers.append(airlock.cli("pending").stdout)
        answers.append(airlock.cli("pending", "--json").stdout)
        for answer in answers:
            assert SUBJECT not in answer
            assert SENDER not in answer
            assert "Payroll" not in answer
        listed = agent.get("/v1/requests").json()["requests"]
        assert [r.get("target") for r in listed] == [None]

        # Approved, the write runs once as it always did.
        assert airlock.approve(agent, created["code"]).status_code == 200
        claim = {"X-Airlock-Claim": joined.json()["claim"]}
        token = agent.get(f"/v1/requests/{created['id']}", headers=claim).json()["session"]
        moved = airlock.op(agent, token["token"], "move", id=KEY, to_folder="Archive")
        assert moved.status_code == 200, moved.text
        assert SUBJECT not in moved.text

    # The audit log records that a description was shown, and its length, never the text.
    audit = "".join(p.read_text() for p in airlock.paths.data_dir.rglob("audit*.jsonl"))
    assert SUBJECT not in audit
    assert SENDER not in audit
    described = [json.loads(x) for x in audit.splitlines() if '"write_target_described"' in x]
    assert len(described) == 1
    assert described[0]["shown"] is True
    assert described[0]["chars"] == len(line)
    # The daemon's log has the subject only on the console channel's prompt line.
    for logged in airlock.daemon.log.read_text().splitlines():
        if SUBJECT in logged or SENDER in logged:
            assert logged.startswith(ACTS_ON), logged


def test_a_target_that_cannot_be_looked_up_still_asks_the_person(airlock: Airlock) -> None:
    """An id that names no message: the request stands (the agent's answer is the same
    as for any other), and the prompt says the target could not be looked up."""
    with airlock.client() as agent:
        body = {"services": ["mail"], "reason": "tidy", "operation": _move("1700009999.none.x")}
        posted = agent.post("/v1/requests", json=body)
        assert posted.status_code == 202, posted.text
        assert set(posted.json()) == {"id", "code", "claim", "fingerprint", "expires_at"}
        line = _prompt_line(airlock, posted.json()["code"])
        assert line.startswith("could not look it up")
        listed = agent.get("/v1/requests").json()["requests"]
        assert [r["status"] for r in listed] == ["pending"]
    audit = "".join(p.read_text() for p in airlock.paths.data_dir.rglob("audit*.jsonl"))
    described = [json.loads(x) for x in audit.splitlines() if '"write_target_described"' in x]
    assert [(r["shown"], r["chars"]) for r in described] == [(False, 0)]


def test_the_dashboard_shows_what_a_pending_write_acts_on_escaped(
    start_airlock: Callable[..., Airlock],
) -> None:
    airlock, url = start_with_dashboard(start_airlock)
    hostile = "<script>alert(1)</script> " + SUBJECT
    msg = EmailMessage()
    msg["From"] = f"<b>Payroll</b> <{SENDER}>"
    msg["Subject"] = hostile
    msg.set_content("x")
    (airlock.maildir / "cur" / f"{KEY}:2,").write_bytes(bytes(msg))
    with airlock.client() as agent:
        body = {"services": ["mail"], "reason": "tidy", "operation": _move(KEY)}
        created = agent.post("/v1/requests", json=body).json()
    _prompt_line(airlock, created["code"])  # looked up
    browser = Browser(url)
    try:
        assert browser.login(airlock.phone.code()).status_code == 303
        page = browser.get("/pending").text
    finally:
        browser.close()
    assert "<script>alert" not in page
    assert "<b>Payroll" not in page
    acts_on = page[page.index("<dt>Acts on</dt>") :].split("</dd>", 1)[0]
    assert html.escape(f": “{hostile}") in acts_on
    assert "the service's text, untrusted" in acts_on


def test_an_answer_to_an_invitation_names_the_event_to_the_person_only(
    start_airlock: Callable[..., Airlock],
    google: GoogleServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The same through gcal: the local Google server, `airlock gcal auth`, a real daemon."""
    google.add_event(
        ME,
        id="invite7q2x",
        summary="Board dinner 7Q2X",
        attendees=[{"email": ME, "self": True, "responseStatus": "needsAction"}],
        start={"dateTime": "2026-12-04T19:00:00+01:00"},
        end={"dateTime": "2026-12-04T21:00:00+01:00"},
    )
    airlock, _, _ = calendar_daemon(start_airlock, google, tmp_path)
    operation = {
        "service": "calendar",
        "name": "respond",
        "params": {"id": "invite7q2x", "response": "declined"},
    }
    with airlock.client() as agent:
        body = {"services": ["calendar"], "reason": "decline the party", "operation": operation}
        posted = agent.post("/v1/requests", json=body)
        assert posted.status_code == 202, posted.text
        line = _prompt_line(airlock, posted.json()["code"])
        answers = [posted.text, agent.get("/v1/requests").text, airlock.cli("pending").stdout]
    assert line == (
        "event starting 2026-12-04T19:00:00+01:00, in calendar primary: “Board dinner 7Q2X”"
    )
    for answer in answers:
        assert "Board dinner" not in answer
    audit = "".join(p.read_text() for p in airlock.paths.data_dir.rglob("audit*.jsonl"))
    assert "Board dinner" not in audit
    assert '"write_target_described"' in audit
