"""One error tree and one table from HTTP status to error, shared by daemon, client and docs."""

from __future__ import annotations

import pytest

from airlock import errors
from airlock.clients._http import error_from_response


@pytest.mark.parametrize(("status", "row"), errors.HTTP_ERRORS.items())
def test_each_status_stands_for_an_error_of_that_status(
    status: int, row: tuple[type[errors.AirlockError], str]
) -> None:
    cls, meaning = row
    assert cls.status == status
    assert meaning


def test_every_status_a_daemon_error_carries_is_in_the_table() -> None:
    stack: list[type[errors.AirlockError]] = [errors.AirlockError]
    seen = set()
    while stack:
        cls = stack.pop()
        seen.add(cls.status)
        stack.extend(cls.__subclasses__())
    assert seen <= set(errors.HTTP_ERRORS)


@pytest.mark.parametrize("status", errors.HTTP_ERRORS)
def test_a_bare_error_answer_becomes_the_tables_error(status: int) -> None:
    """A proxy's or aiohttp's own page (no Airlock code in the body) still maps by status."""
    raised = error_from_response(status, b"<html>nope</html>")
    assert type(raised) is errors.HTTP_ERRORS[status][0]
