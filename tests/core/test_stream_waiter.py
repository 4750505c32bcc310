"""A streamed answer's frames wait in the core for its consumer (the relay to the agent):
at most MAX_FRAMES_WAITING of them; past that the agent is not reading, and the stream
ends with what it held dropped, instead of the core keeping every chunk the service
sends for as long as the agent keeps its connection."""

from __future__ import annotations

import asyncio

import pytest

from airlock.connector_host.waiters import MAX_FRAMES_WAITING, StreamNotRead, Waiter


def test_a_stream_whose_frames_are_not_taken_ends_and_keeps_none() -> None:
    async def main() -> None:
        waiter = Waiter(asyncio.get_running_loop(), streamed=True)
        for n in range(MAX_FRAMES_WAITING):
            waiter.put({"chunk": n})
        assert (await waiter.next_frame(1.0)) == {"chunk": 0}  # still under the limit
        waiter.put({"chunk": "one more"})
        waiter.put({"chunk": "past it"})
        assert waiter.frames is not None
        assert len(waiter.frames) == 0, "what it held is dropped"
        with pytest.raises(StreamNotRead):
            await waiter.next_frame(1.0)
        waiter.put({"chunk": "later"})  # more from the service is not kept either
        assert len(waiter.frames) == 0
        with pytest.raises(StreamNotRead):
            await waiter.next_frame(1.0)

    asyncio.run(main())


def test_a_consumer_keeping_up_gets_every_frame_in_order() -> None:
    async def main() -> list[object]:
        waiter = Waiter(asyncio.get_running_loop(), streamed=True)
        taken = []
        for n in range(3 * MAX_FRAMES_WAITING):
            waiter.put({"chunk": n})
            if n % 2:
                taken.append(await waiter.next_frame(1.0))
                taken.append(await waiter.next_frame(1.0))
        return taken

    taken = asyncio.run(main())
    assert taken == [{"chunk": n} for n in range(3 * MAX_FRAMES_WAITING)]
