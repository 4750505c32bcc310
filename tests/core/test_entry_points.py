"""The hand-written entry-point reader gives importlib.metadata's answer on this environment.

It exists only to keep ``airlock --help`` fast; if it ever disagreed, a plugin would be
found by one and missed by the other.
"""

from __future__ import annotations

import importlib.metadata
import re

import pytest

from airlock.framework._entry_points import entry_points


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("group", ["airlock", "console_scripts", "pytest11"])
def test_the_reader_agrees_with_importlib_metadata(group: str) -> None:
    ours = sorted(
        (ep.name, ep.value, _key(ep.distribution), ep.version) for ep in entry_points(group)
    )
    theirs = sorted(
        (ep.name, ep.value, _key(ep.dist.name), ep.dist.version)
        for ep in importlib.metadata.entry_points(group=group)
        if ep.dist is not None
    )
    assert ours == theirs
