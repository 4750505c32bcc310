"""Where the dashboard listens, and which ``Host`` headers it answers.

A page on another site can make the browser send requests to 127.0.0.1 under its own
name (DNS rebinding: ``evil.example`` resolving to 127.0.0.1). Such a request carries
that name in ``Host``, so the dashboard answers only Hosts that are IP literals or
``localhost`` — names an attacker cannot point at this machine — on the bound port.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from airlock.errors import ConfigError

OFF = "off"


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):  # noqa: S104 - shown as where to browse, not bound
            host = "127.0.0.1"
        return f"http://{host}:{port if port is not None else self.port}/"


def parse_listen(value: str, *, allow_remote: bool) -> ListenAddress | None:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) or ``off``; None when off.

    Only loopback addresses unless *allow_remote*: the dashboard approves access to the
    person's accounts, so it is not put on a network by accident.
    """
    text = value.strip()
    if text.lower() == OFF:
        return None
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(
            f"dashboard.listen: {value[:60]!r} is not HOST:PORT or off",
            hint="e.g. 127.0.0.1:8410",
            field="dashboard.listen",
        )
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"dashboard.listen: {host[:60]!r} is not an IP address or localhost",
                hint="e.g. 127.0.0.1:8410",
                field="dashboard.listen",
            ) from None
    address = ListenAddress(host, int(port_text))
    if not address.loopback and not allow_remote:
        raise ConfigError(
            f"dashboard.listen: {host} is not a loopback address",
            hint="use 127.0.0.1, or set dashboard.allow_remote: true (see docs/dashboard.md)",
            field="dashboard.listen",
        )
    return address


def host_allowed(header: str, *, port: int, remote: bool) -> bool:
    """Whether a request's ``Host`` names this dashboard (an IP literal or localhost).

    Loopback names only, unless the person allowed remote access, where any IP literal
    is accepted (DNS rebinding needs a name, never an address).
    """
    host, sep, port_text = header.rpartition(":")
    if not sep or port_text != str(port):
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return remote or ip.is_loopback
