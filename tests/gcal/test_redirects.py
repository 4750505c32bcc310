"""Google's API and token endpoints never redirect. A redirect (a misbehaving proxy, a
server posing as Google) is refused, not followed: httplib2 would send a token refresh
(client secret and refresh token in its body) on to wherever a 308 points, https or
not, and take another host's answer to a calendar read as Google's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from airlock.errors import AirlockError, ConnectorAuthError
from tests.gcal.conftest import MakeConnector
from tests.gcal.google_server import GoogleServer
from tests.gcal.test_calendar import call
from tests.notifier_harness.threaded_server import ThreadedServer


class Redirector(ThreadedServer):
    """Answers every request with *status* to the same path at *target*."""

    def __init__(self, target: str, status: int) -> None:
        self.target, self.status = target, status
        self.seen: list[str] = []
        super().__init__(self._app)

    def _app(self) -> web.Application:
        async def redirect(request: web.Request) -> web.Response:
            self.seen.append(request.path)
            location = f"{self.target}{request.path_qs}"
            return web.Response(status=self.status, headers={"Location": location})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", redirect)
        return app


@pytest.fixture
def redirector(google: GoogleServer, request: pytest.FixtureRequest) -> Iterator[Redirector]:
    server = Redirector(google.url, request.param)
    yield server
    server.stop()


@pytest.mark.parametrize("redirector", [307, 308], indirect=True)
def test_a_token_refresh_is_not_sent_where_a_redirect_points(
    google: GoogleServer, make_connector: MakeConnector, redirector: Redirector
) -> None:
    connector = make_connector(token_uri=f"{redirector.url}/token")
    with pytest.raises(ConnectorAuthError):
        call(connector, "list_calendars")
    assert redirector.seen == ["/token"]
    assert google.state.token_requests == [], "the secrets went on to the redirect's target"


@pytest.mark.parametrize("redirector", [302, 301], indirect=True)
def test_a_read_redirected_elsewhere_is_an_error_not_the_other_hosts_answer(
    google: GoogleServer, make_connector: MakeConnector, redirector: Redirector
) -> None:
    connector = make_connector(api_endpoint=f"{redirector.url}/calendar/v3/")
    with pytest.raises(AirlockError, match="redirect"):
        call(connector, "list_calendars")
    assert google.api_requests() == []
