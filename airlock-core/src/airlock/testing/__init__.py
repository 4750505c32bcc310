"""Test helpers for plugin authors: contract suites that every component must pass.

Like ``langchain-tests``: a plugin's test module subclasses a contract class, says how
to make its component, and inherits a set of tests that check what core relies on. Our
own connectors pass the same suites, so a third-party plugin gets the same checks.

Only tests import this module; it needs pytest, and deliberately not pytest-asyncio
(coroutines run with :func:`asyncio.run`).

Connectors — :class:`ConnectorContract`::

    import pytest
    from airlock.testing import ConnectorContract

    class TestExampleContract(ConnectorContract):
        connector_class = ExampleConnector
        read_params = {"list_things": {}, "get_thing": {"id": "42"}}

        @pytest.fixture
        def connector_factory(self, tmp_path):
            self.root = make_sample_service(tmp_path)   # fixtures may keep state on self

            async def make():
                settings = ExampleConnector.parse_settings({"path": str(self.root)}, service="t")
                connector = ExampleConnector(settings, ExampleConnector.Credentials(), service="t")
                await connector.open()
                return connector

            return make

        def snapshot(self):                     # optional: what reads must not change
            return sorted(p.name for p in self.root.iterdir())

Notifiers — :class:`NotifierContract`: the same pattern with a ``notifier_factory``
fixture, plus optional hooks to see what the person received and to make them reply.
"""

from __future__ import annotations

from airlock.testing._support import dumpable_after, run, skip_or_fail_under_ci, under_ci
from airlock.testing.connectors import ConnectorContract, ConnectorFactory
from airlock.testing.notifiers import (
    CONTRACT_AGENT,
    CONTRACT_PROCESS,
    HOSTILE_REASON,
    NotifierContract,
    NotifierFactory,
    contract_prompt,
)

__all__ = [
    "CONTRACT_AGENT",
    "CONTRACT_PROCESS",
    "HOSTILE_REASON",
    "ConnectorContract",
    "ConnectorFactory",
    "NotifierContract",
    "NotifierFactory",
    "contract_prompt",
    "dumpable_after",
    "run",
    "skip_or_fail_under_ci",
    "under_ci",
]
