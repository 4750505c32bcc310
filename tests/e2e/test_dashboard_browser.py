"""The dashboard in a real headless Chromium against a real daemon: log in with a code,
watch a request arrive live, approve it, see and revoke the session, filter the audit,
and try the attacks a hostile page or agent would (framing, cross-origin forms, DNS
rebinding, markup in an agent's text). Screenshots of each page are checked and kept
under the test's temporary directory (or ``AIRLOCK_SCREENSHOTS``, to refresh the docs)."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Airlock, remember
from dashboard_support import CHROMIUM, need_browser, start_with_dashboard

HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> urgent'
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("AIRLOCK_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def hostile_site(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Serve pages from another origin on 127.0.0.1 (same site, other port)."""
    root = tmp_path / "evil"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(root), **kw)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def page(html: str) -> str:
        name = f"p{len(list(root.iterdir()))}.html"
        (root / name).write_text(html)
        return f"http://127.0.0.1:{server.server_address[1]}/{name}"

    yield page
    server.shutdown()
    server.server_close()


def screenshot(page: Any, shots: Path, name: str, expect: str) -> Path:
    assert expect in page.inner_text("main"), f"{name}: {expect!r} not on the page"
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 5000, f"{name}.png looks empty"
    return path


def test_the_person_and_the_attacker_in_a_real_browser(
    start_airlock: Callable[..., Airlock],
    shots: Path,
    hostile_site: Callable[[str], str],
) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    airlock, url = start_with_dashboard(start_airlock)
    port = url.rsplit(":", 1)[1]
    with airlock.client() as agent, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        csp_errors: list[str] = []
        page.on("console", lambda m: csp_errors.append(m.text) if m.type == "error" else None)

        # No code, no page.
        page.goto(url + "/pending")
        assert page.url == url + "/login"
        screenshot(page, shots, "login", "Type the current code")
        page.fill("#code", "000000")
        page.click("button:has-text('Log in')")
        assert "wrong code" in page.inner_text(".error")
        page.fill("#code", airlock.phone.code())
        page.click("button:has-text('Log in')")
        assert page.url == url + "/pending"
        assert "Nothing is waiting" in page.inner_text("#pending")
        cookie = next(c for c in page.context.cookies() if c["name"] == "airlock_dashboard")
        remember(cookie["value"])
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # scripts cannot read it

        # A request arrives while the page is open: it appears without a reload.
        page.wait_for_selector("body[data-stream=open]")  # the event stream is connected
        created = airlock.request(agent, reason=HOSTILE, agent="<b>claude</b>")
        card = page.wait_for_selector(f"#req-{created['code']}", timeout=10_000)
        assert card is not None
        text = card.inner_text()
        assert HOSTILE in text  # shown as the literal text the agent sent
        assert "<b>claude</b>" in text
        assert created["fingerprint"] in text
        assert "as the agent says" in text
        assert page.evaluate("window.pwned") is None  # neither markup ran
        assert page.query_selector("#pending img") is None
        assert page.query_selector("#pending b") is None
        screenshot(page, shots, "pending", created["code"])

        # Approve it with a code; the agent collects its session.
        page.fill(f"#code-{created['code']}", airlock.phone.code())
        page.click(f"#req-{created['code']} button:has-text('Approve')")
        assert f"Approved {created['code']}" in page.inner_text(".done")
        state = agent.get(
            f"/v1/requests/{created['id']}", headers={"X-Airlock-Claim": created["claim"]}
        ).json()
        session = state["session"]
        remember(session["token"])
        assert airlock.op(agent, session["token"], "list_messages").status_code == 200

        # The session is listed; revoke it from the page.
        page.click("nav a:has-text('Sessions')")
        row = page.wait_for_selector(f"tr#{session['id']}")
        assert row is not None
        assert "mail" in row.inner_text()
        screenshot(page, shots, "sessions", session["id"])
        page.click(f"tr#{session['id']} button:has-text('Revoke')")
        assert "Session revoked" in page.inner_text(".done")
        assert page.query_selector(f"tr#{session['id']}") is None
        assert airlock.op(agent, session["token"], "list_messages").status_code == 401

        # Audit: filter, open a record's JSON.
        page.click("nav a:has-text('Audit')")
        page.wait_for_selector("text=Chain intact")
        page.fill("input[name=event]", "session_revoked")
        page.click("button:has-text('Filter')")
        rows = page.query_selector_all("table.audit tbody tr")
        assert len(rows) == 1
        assert session["id"] in rows[0].inner_text()
        page.click("table.audit summary")
        assert '"event": "session_revoked"' in page.inner_text("table.audit pre")
        page.goto(url + "/audit")
        page.click("table.audit tbody tr:first-child summary")
        screenshot(page, shots, "audit", "Chain intact")

        page.click("nav a:has-text('Activity')")
        assert page.query_selector("svg rect.ok") is not None
        screenshot(page, shots, "activity", "mail")
        page.click("nav a:has-text('Services')")
        page.click("button:has-text('Check every service now')")
        screenshot(page, shots, "services", "Not locked")

        # Attack 1: another origin frames the dashboard (clickjacking): the browser refuses.
        evil = browser.new_page()
        evil.goto(hostile_site(f'<iframe id="f" src="{url}/sessions"></iframe>'))
        evil.wait_for_timeout(1000)
        framed = next(f for f in evil.frames if f != evil.main_frame)
        assert "Active sessions" not in framed.content()

        # Attack 2: another origin posts a form (CSRF) that would revoke every session.
        second = airlock.session(agent)
        evil.goto(
            hostile_site(
                f'<form id="x" method="post" action="{url}/sessions/revoke-all">'
                '<input name="csrf" value="guess"></form>'
                '<script>document.getElementById("x").submit()</script>'
            )
        )
        evil.wait_for_load_state()
        # The refusal page, once the form's post has come back (however slow the machine).
        evil.wait_for_selector("text=cross-origin request refused", timeout=15_000)
        listed = agent.get("/v1/sessions").json()["sessions"]
        assert second["id"] in [s["id"] for s in listed]

        # Attack 3: DNS rebinding — a foreign name resolving to 127.0.0.1.
        answer = evil.goto(f"http://rebind.test:{port}/pending")
        assert answer is not None
        assert answer.status == 421
        assert "Active sessions" not in evil.content()

        assert dialogs == []
        assert not [e for e in csp_errors if "Content Security Policy" in e]
        browser.close()
