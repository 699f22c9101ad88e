"""The async batcher behind the chat path: batches under load, back-pressure, flush on close, errors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.chat.batcher import AsyncBatcher, ClosedError


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    seen: list[int] = []

    def double(items: list[int]) -> list[int]:
        seen.append(len(items))
        time.sleep(0.01)  # while one batch works, the others queue up
        return [2 * i for i in items]

    async def main() -> list[int]:
        batcher: AsyncBatcher[int, int] = AsyncBatcher("t", double, max_batch=8, max_pending=100)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(40)))
        stats = batcher.stats()
        await batcher.close()
        assert stats.items == 40 and stats.batches == len(seen) and stats.largest_batch <= 8
        return list(results)

    assert run(main()) == [2 * i for i in range(40)]
    assert len(seen) < 40 and max(seen) > 1  # batched, never beyond the bound
    assert max(seen) <= 8


def test_a_lone_request_is_not_held_back() -> None:
    async def main() -> int:
        # a one-minute batch window: a batcher that waited for company would never answer in time
        batcher: AsyncBatcher[int, int] = AsyncBatcher(
            "t", lambda items: items, max_batch=32, max_pending=10, max_wait_ms=60_000
        )
        batcher.start()
        first = await asyncio.wait_for(batcher.submit(1), timeout=10)
        second = await asyncio.wait_for(batcher.submit(2), timeout=10)  # and not after a lone one either
        await batcher.close()
        return first + second

    assert run(main()) == 3


def test_a_full_queue_makes_requests_wait_and_drops_nothing() -> None:
    gate = threading.Event()
    handled: list[int] = []

    def slow(items: list[int]) -> list[int]:
        gate.wait(5)
        handled.extend(items)
        return items

    async def main() -> None:
        batcher: AsyncBatcher[int, int] = AsyncBatcher("t", slow, max_batch=1, max_pending=2)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(6)]
        await asyncio.sleep(0.1)
        assert batcher.stats().pending == 2  # the rest wait for room instead of queueing or failing
        assert not any(t.done() for t in tasks)
        gate.set()
        assert await asyncio.gather(*tasks) == list(range(6))
        await batcher.close()

    run(main())
    assert sorted(handled) == list(range(6))


def test_close_flushes_accepted_work_then_refuses_more() -> None:
    handled: list[int] = []

    def record(items: list[int]) -> list[int]:
        time.sleep(0.005)
        handled.extend(items)
        return items

    async def main() -> None:
        batcher: AsyncBatcher[int, int] = AsyncBatcher("t", record, max_batch=4, max_pending=100, threads=2)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(30)]
        await asyncio.sleep(0)  # let every task enqueue
        await batcher.close()
        assert sorted(await asyncio.gather(*tasks)) == list(range(30))
        with pytest.raises(ClosedError):
            await batcher.submit(99)

    run(main())
    assert sorted(handled) == list(range(30))


def test_errors_reach_only_the_requests_they_belong_to() -> None:
    def picky(items: list[int]) -> list[int | BaseException]:
        if 13 in items and len(items) == 1:
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    async def main() -> None:
        batcher: AsyncBatcher[int, int] = AsyncBatcher("t", picky, max_batch=1, max_pending=10)
        batcher.start()
        assert await batcher.submit(2) == 2
        with pytest.raises(ValueError, match="bad 3"):
            await batcher.submit(3)
        with pytest.raises(RuntimeError, match="whole batch"):
            await batcher.submit(13)
        assert await batcher.submit(4) == 4  # the worker survived
        await batcher.close()

    run(main())


def test_requests_waiting_for_room_at_close_are_refused_not_stranded() -> None:
    gate = threading.Event()

    def slow(items: list[int]) -> list[int]:
        gate.wait(5)
        return items

    async def main() -> None:
        batcher: AsyncBatcher[int, int] = AsyncBatcher("t", slow, max_batch=1, max_pending=1)
        batcher.start()
        accepted = asyncio.create_task(batcher.submit(1))
        waiting = asyncio.create_task(batcher.submit(2))  # no room: waits
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0.05)
        gate.set()
        await closing
        assert await accepted == 1
        with pytest.raises(ClosedError):
            await asyncio.wait_for(waiting, timeout=10)

    run(main())
