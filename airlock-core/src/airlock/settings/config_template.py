"""The config ``airlock init`` writes, and the sections it holds.

Most configs are this file unchanged; reading it needs no YAML parser (importing one costs
more than the rest of reading the config), so :func:`template_sections` gives what
``yaml.safe_load`` makes of it, as :func:`airlock.settings.config_file.read_config_file`
returns it (sections left empty dropped). tests/core/test_config_plain.py checks both
agree.
"""

from __future__ import annotations

from typing import Any

CONFIG_TEMPLATE = """\
# Airlock configuration. Every key can also be set as AIRLOCK_<SECTION>__<KEY>.
# Credentials never go here: add them with `airlock credentials add SERVICE`.

totp:
  issuer: Airlock
  account: me@airlock          # the label your authenticator app shows
  # digits: 6
  # period: 30

sessions:
  default_ttl: 60m             # how long an approved session lasts unless asked otherwise
  max_ttl: 8h                  # no session lasts longer than this

approvals:
  timeout: 5m                  # unanswered requests expire
  max_failures: 5              # wrong codes within failure_window before approvals lock
  failure_window: 15m
  lockout: 15m
  notifiers: [console]         # add telegram or signal once set up

# One entry per account; the key is the service name agents and the CLI use.
# Remove the # in front of an example to use it (its password goes in with
# `airlock credentials add NAME`), then `airlock reload` if the daemon runs.
services:
  # archive: {connector: maildir, path: ~/Mail/archive}
  # work:    {connector: imap, host: imap.example.com, port: 993, username: me@example.com}
  # gmail:   {connector: gmail}

permissions:
  rate_limit: 60               # operations a minute per session
  # gmail: {write: deny}      # never allow writes to this service, even with approval
"""


def template_sections() -> dict[str, Any]:
    """The sections of :data:`CONFIG_TEMPLATE`, as a new mapping each time."""
    return {
        "totp": {"issuer": "Airlock", "account": "me@airlock"},
        "sessions": {"default_ttl": "60m", "max_ttl": "8h"},
        "approvals": {
            "timeout": "5m",
            "max_failures": 5,
            "failure_window": "15m",
            "lockout": "15m",
            "notifiers": ["console"],
        },
        "permissions": {"rate_limit": 60},
    }
