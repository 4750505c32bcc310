"""The connector host's channel read back frame by frame (``protocol.FrameReader``),
however the bytes arrive: many frames in one read, one frame in many, a frame larger
than a read, and the channel ending between frames or inside one."""

from __future__ import annotations

import asyncio
import itertools
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.connector_host.protocol import MAX_ANSWER_BYTES, ChannelBroken, FrameReader, frame

_MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"id": st.integers(1, 10**6), "ok": st.dictionaries(st.text(max_size=8), st.text())}
    ),
    min_size=1,
    max_size=12,
)


def _read_all(data: bytes, cuts: list[int], count: int) -> list[dict[str, Any]]:
    """*count* frames from a stream that gets *data* in pieces cut at *cuts*."""

    async def run() -> list[dict[str, Any]]:
        reader = asyncio.StreamReader()
        frames = FrameReader(reader, MAX_ANSWER_BYTES)
        edges = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]

        async def feed() -> None:
            for start, end in itertools.pairwise(edges):
                reader.feed_data(data[start:end])
                await asyncio.sleep(0)
            reader.feed_eof()

        feeding = asyncio.create_task(feed())
        got = [await frames.next() for _ in range(count)]
        await feeding
        with pytest.raises(ChannelBroken, match=r"^the channel closed$"):
            await frames.next()
        return got

    return asyncio.run(run())


@settings(max_examples=150, deadline=None)
@given(_MESSAGES, st.lists(st.integers(0, 10**6), max_size=20))
def test_frames_come_back_whole_and_in_order_however_the_bytes_arrive(
    messages: list[dict[str, Any]], cuts: list[int]
) -> None:
    data = b"".join(frame(message, MAX_ANSWER_BYTES) for message in messages)
    assert _read_all(data, cuts, len(messages)) == messages


def test_a_frame_larger_than_a_read_arrives_whole_between_small_ones() -> None:
    big = {"id": 2, "ok": {"text": "x" * (3 * 1024 * 1024)}}
    messages = [{"id": 1, "ok": {}}, big, {"id": 3, "ok": {"a": "b"}}]
    data = b"".join(frame(message, MAX_ANSWER_BYTES) for message in messages)
    assert _read_all(data, [7, 100_000, 2_000_000], 3) == messages


@pytest.mark.parametrize("keep", [1, 3, 4, 10])
def test_a_channel_that_ends_inside_a_frame_is_broken_not_a_frame(keep: int) -> None:
    async def run() -> None:
        reader = asyncio.StreamReader()
        whole = frame({"id": 1, "ok": {}}, MAX_ANSWER_BYTES)
        reader.feed_data(whole + frame({"id": 2, "ok": {}}, MAX_ANSWER_BYTES)[:keep])
        reader.feed_eof()
        frames = FrameReader(reader, MAX_ANSWER_BYTES)
        assert await frames.next() == {"id": 1, "ok": {}}
        with pytest.raises(ChannelBroken, match="inside a frame"):
            await frames.next()

    asyncio.run(run())


def test_a_frame_over_the_limit_is_refused_before_its_payload_is_read() -> None:
    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(frame({"id": 1, "ok": {"t": "x" * 100}}, MAX_ANSWER_BYTES)[:10])
        with pytest.raises(ChannelBroken, match="over the 50 byte limit"):
            await asyncio.wait_for(FrameReader(reader, 50).next(), 5)

    asyncio.run(run())


def test_a_large_frame_is_not_held_while_the_channel_is_quiet() -> None:
    """Read, it is the caller's: the reader keeps none of its 15 MiB while it waits for
    the next (a hostile host could otherwise pin that much of the daemon for good)."""

    async def run() -> int:
        reader = asyncio.StreamReader(limit=1 << 25)
        reader.feed_data(frame({"id": 1, "ok": {"t": "x" * (15 << 20)}}, MAX_ANSWER_BYTES))
        frames = FrameReader(reader, MAX_ANSWER_BYTES)
        tracemalloc.start()
        try:
            got = await frames.next()
            assert len(got["ok"]["t"]) == 15 << 20
            del got
            waiting = asyncio.ensure_future(frames.next())
            await asyncio.sleep(0)
            held, _peak = tracemalloc.get_traced_memory()
            waiting.cancel()
            return held
        finally:
            tracemalloc.stop()

    assert asyncio.run(run()) < 1 << 20


def test_a_wait_cancelled_mid_frame_loses_none_of_it() -> None:
    async def run() -> list[dict[str, Any]]:
        reader = asyncio.StreamReader()
        data = frame({"id": 1, "ok": {}}, MAX_ANSWER_BYTES) + frame(
            {"id": 2, "ok": {"a": "b"}}, MAX_ANSWER_BYTES
        )
        frames = FrameReader(reader, MAX_ANSWER_BYTES)
        reader.feed_data(data[:6])  # all of a length and two bytes of its payload
        waiting = asyncio.ensure_future(frames.next())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        reader.feed_data(data[6:])
        return [await frames.next(), await frames.next()]

    assert asyncio.run(run()) == [{"id": 1, "ok": {}}, {"id": 2, "ok": {"a": "b"}}]
