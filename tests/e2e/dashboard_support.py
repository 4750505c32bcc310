"""A real daemon with its dashboard on a free loopback port, and a logged-in browser-like
HTTP client (cookies, Origin, the form tokens a page carries)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from daemon_harness import Airlock

from airlock.testing import skip_or_fail_under_ci

DASHBOARD_ON = {"dashboard": {"listen": "127.0.0.1:0"}}


def dashboard_url(airlock: Airlock, timeout: float = 10.0) -> str:
    """The address the daemon wrote once its dashboard listened."""
    target = airlock.paths.run_dir / "dashboard.url"
    deadline = time.monotonic() + timeout
    while not target.exists():
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    return target.read_text().strip().rstrip("/")


def start_with_dashboard(
    start_airlock: Callable[..., Airlock], extra: dict[str, Any] | None = None
) -> tuple[Airlock, str]:
    airlock = start_airlock({**DASHBOARD_ON, **(extra or {})})
    return airlock, dashboard_url(airlock)


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


class Browser:
    """What a browser on this dashboard sends: its Host, its Origin, its cookies."""

    def __init__(self, url: str, source: str | None = None) -> None:
        """*source*: the loopback address it sends from (127.0.0.0/8 is all this host)."""
        self.url = url
        # What a browser says of a request from the dashboard's own page.
        fetched = {"Sec-Fetch-Site": "same-origin"}
        transport = httpx.HTTPTransport(local_address=source) if source else None
        self.http = httpx.Client(
            base_url=url, follow_redirects=False, timeout=30, headers=fetched, transport=transport
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict[str, str], **kw: Any) -> httpx.Response:
        headers = {"Origin": self.url, **kw.pop("headers", {})}
        return self.http.post(path, data=data, headers=headers, **kw)

    def login(self, code: str) -> httpx.Response:
        page = self.get("/login")
        return self.post("/login", {"login_token": field(page.text, "login_token"), "code": code})

    def csrf(self, path: str = "/pending") -> str:
        return field(self.get(path).text, "csrf")

    def close(self) -> None:
        self.http.close()


CHROMIUM = "/usr/bin/chromium"


def need_browser() -> None:
    """Skip without Chromium and Playwright locally; under CI a missing browser fails."""
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (uv sync --group test)")
    if not missing:
        return
    skip_or_fail_under_ci("the browser tests need " + " and ".join(missing))
