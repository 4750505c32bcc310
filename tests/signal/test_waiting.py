"""Messages waiting to be read (``_waiting``): the person's apart from everyone else's,
each bounded on its own, all read in the order they came; what is dropped is logged
without its content. The scenarios on a runtime against each stand-in: test_bursts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from airlock_notify_signal._waiting import (
    ENDED,
    MAX_PERSON_WAITING,
    MAX_WAITING,
    MAX_WAITING_BYTES,
    Person,
    Waiting,
)
from tests.signal.signal_api_server import PERSON, PERSON_UUID, STRANGER

ME = Person(PERSON, PERSON_UUID)


def item(source: Any, text: str, *, uuid: Any = "u-other", field: str = "sourceNumber") -> Any:
    envelope = {field: source, "sourceUuid": uuid, "dataMessage": {"message": text}}
    return {"envelope": envelope, "account": "+15550001000"}


def text_of(got: Any) -> str:
    return str(got["envelope"]["dataMessage"]["message"])


def drain(waiting: Waiting) -> list[str]:
    waiting.end()

    async def take() -> list[str]:
        got = []
        while (next_one := await waiting.get()) is not ENDED:
            got.append(text_of(next_one))
        return got

    return asyncio.run(take())


def test_messages_are_read_in_the_order_they_came() -> None:
    waiting = Waiting()
    for n in range(3):
        waiting.put(item(STRANGER, f"s{n}"), 100, person=False)
        waiting.put(item(PERSON, f"p{n}"), 100, person=True)
    assert drain(waiting) == ["s0", "p0", "s1", "p1", "s2", "p2"]


def test_strangers_filling_their_place_cost_the_person_nothing() -> None:
    waiting = Waiting()
    with capture_logs() as logged:
        for n in range(MAX_WAITING + 500):
            waiting.put(item(STRANGER, f"hostile {n}"), 100, person=False)
        waiting.put(item(PERSON, "123456"), 100, person=True)
        waiting.put(item(STRANGER, "one more"), 100, person=False)
        got = drain(waiting)
    assert got == [f"hostile {n}" for n in range(MAX_WAITING)] + ["123456"]
    assert [(e["event"], e["lane"]) for e in logged] == [
        ("signal_receive_dropping", "others"),
        ("signal_receive_dropped", "others"),
    ]
    assert logged[0]["why"] == f"over {MAX_WAITING} waiting"
    assert logged[1]["count"] == 501
    assert "hostile" not in repr(logged)
    assert STRANGER not in repr(logged)


def test_strangers_large_messages_are_bounded_by_their_size_too() -> None:
    waiting = Waiting()
    size = MAX_WAITING_BYTES // 4
    with capture_logs() as logged:
        for n in range(6):
            waiting.put(item(STRANGER, f"large {n}"), size, person=False)
        got = drain(waiting)  # ending says how many went
    assert got == ["large 0", "large 1", "large 2", "large 3"]
    assert logged[0]["why"] == f"over {MAX_WAITING_BYTES >> 20} MiB waiting"
    assert logged[-1]["count"] == 2


def test_the_person_s_own_are_bounded_and_the_newest_kept() -> None:
    """Only the person's account fills their place; if it ever overflows, the newest
    (the reply they wait on) stays."""
    waiting = Waiting()
    with capture_logs() as logged:
        for n in range(MAX_PERSON_WAITING + 5):
            waiting.put(item(PERSON, f"p{n}"), 100, person=True)
        got = drain(waiting)
    assert got == [f"p{n}" for n in range(5, MAX_PERSON_WAITING + 5)]
    assert [(e["event"], e["lane"]) for e in logged] == [
        ("signal_receive_dropping", "person"),
        ("signal_receive_dropped", "person"),
    ]
    assert logged[-1]["count"] == 5


def test_nothing_is_taken_after_the_end_and_waiting_readers_are_woken() -> None:
    waiting = Waiting()

    async def main() -> list[Any]:
        reader = asyncio.ensure_future(waiting.get())
        await asyncio.sleep(0)  # let it wait
        waiting.put(item(PERSON, "first"), 10, person=True)
        first = await reader
        reader = asyncio.ensure_future(waiting.get())
        await asyncio.sleep(0)
        waiting.end()
        waiting.put(item(PERSON, "too late"), 10, person=True)
        return [text_of(first), await reader]

    assert asyncio.run(main()) == ["first", ENDED]


@pytest.mark.parametrize(
    ("raw", "theirs"),
    [
        (item(PERSON, "x"), True),
        (item(PERSON, "x", field="source"), True),  # older signal-cli: ``source`` only
        (item(None, "x", uuid=PERSON_UUID), True),  # the number hidden: their ACI
        (item(STRANGER, "x", uuid=PERSON_UUID[:-1]), False),
        (item(15550002000, "x"), False),  # a number of the wrong type is no match
        (item({"number": PERSON}, "x"), False),
        ({"envelope": "not an object"}, False),
        (["not", "an", "item"], False),
    ],
)
def test_who_is_the_person_is_read_from_the_sender_signal_cli_names(raw: Any, theirs: bool) -> None:
    assert ME.wrote(raw) is theirs
    assert Person(None).wrote(raw) is False  # a link that only sends tells nobody apart
