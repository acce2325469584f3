"""Batcher: batches form under concurrency, stay within their size, fail only the callers they must."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from services.core.batcher import Batcher, BatchStats
from services.core.errors import InvalidInput, NotReady

HANG_GUARD_S = 10  # only stops a broken batcher from hanging the suite; no test depends on speed


class Recorder:
    """A batch function that doubles numbers, refuses negatives and remembers every batch it saw."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if any(i < 0 for i in items):
            raise InvalidInput(f"negative item in {items}")
        return [2 * i for i in items]


class Gate:
    """A runner that holds every batch until released, to make batches overlap deterministically."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return fn(*args)


async def guarded(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, HANG_GUARD_S)


async def test_concurrent_submissions_share_one_batch_and_get_their_own_results() -> None:
    process = Recorder()
    stats: list[BatchStats] = []
    batcher: Batcher[int, int] = Batcher(process, max_weight=100, max_wait_s=0.05, on_batch=stats.append)
    results = await guarded(asyncio.gather(*(batcher.submit(i) for i in range(10))))
    assert results == [2 * i for i in range(10)]
    assert process.batches == [list(range(10))]
    assert [(s.items, s.weight) for s in stats] == [(10, 10)]


async def test_batches_never_exceed_max_weight() -> None:
    process = Recorder()
    batcher: Batcher[int, int] = Batcher(process, max_weight=4, max_wait_s=0.05)
    results = await guarded(asyncio.gather(*(batcher.submit(i) for i in range(10))))
    assert results == [2 * i for i in range(10)]
    assert [len(b) for b in process.batches] == [4, 4, 2]
    assert sorted(i for b in process.batches for i in b) == list(range(10))


async def test_weights_count_items_inside_each_submission() -> None:
    seen: list[list[list[str]]] = []

    def lengths(items: list[list[str]]) -> list[int]:
        seen.append(items)
        return [len(texts) for texts in items]

    batcher: Batcher[list[str], int] = Batcher(lengths, max_weight=5, max_wait_s=0.05, weight=len)
    submissions = [["a"] * 3, ["b"] * 2, ["c"] * 4, ["d"] * 9]
    results = await guarded(asyncio.gather(*(batcher.submit(s) for s in submissions)))
    assert results == [3, 2, 4, 9]
    # 3 + 2 fill the first batch; 4 alone (4 + 9 > 5); 9 is heavier than a batch and runs alone
    assert [[len(s) for s in batch] for batch in seen] == [[3, 2], [4], [9]]


async def test_a_lone_submission_is_not_held_waiting_for_company() -> None:
    process = Recorder()
    batcher: Batcher[int, int] = Batcher(process, max_weight=1000, max_wait_s=0.01)
    assert await guarded(batcher.submit(21)) == 42
    assert process.batches == [[21]]


async def test_a_failing_item_fails_only_its_own_caller() -> None:
    process = Recorder()
    batcher: Batcher[int, int] = Batcher(process, max_weight=100, max_wait_s=0.05)
    results = await guarded(asyncio.gather(*(batcher.submit(i) for i in (1, -1, 3)), return_exceptions=True))
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], InvalidInput) and "negative" in str(results[1])
    # the whole batch first, then each item alone
    assert process.batches == [[1, -1, 3], [1], [-1], [3]]


async def test_a_wrong_number_of_results_is_an_error_not_a_mismatch() -> None:
    batcher: Batcher[int, int] = Batcher(lambda items: items[:1], max_weight=100, max_wait_s=0.05)
    results = await guarded(asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True))
    # retried one by one, each returns exactly one result again
    assert results == [1, 2]
    lossy: Batcher[int, int] = Batcher(lambda items: [], max_weight=100, max_wait_s=0.05)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await guarded(lossy.submit(1))


async def test_cancelling_a_queued_caller_removes_its_item_and_spares_the_others() -> None:
    process = Recorder()
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(process, gate, max_weight=100, max_wait_s=0)
    first = asyncio.create_task(batcher.submit(1))
    await guarded(gate.entered.wait())  # batch [1] is in flight, held by the gate
    queued = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    assert batcher.pending == 3
    queued[1].cancel()
    await asyncio.sleep(0)
    assert batcher.pending == 2
    gate.release.set()
    assert await guarded(first) == 2
    assert await guarded(queued[0]) == 4 and await guarded(queued[2]) == 8
    assert queued[1].cancelled()
    assert process.batches == [[1], [2, 4]]


async def test_cancelling_a_caller_whose_batch_is_running_spares_the_rest_of_the_batch() -> None:
    process = Recorder()
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(process, gate, max_weight=100, max_wait_s=0.05)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in (1, 2, 3)]
    await guarded(gate.entered.wait())
    tasks[0].cancel()
    gate.release.set()
    assert [await guarded(t) for t in tasks[1:]] == [4, 6]
    assert tasks[0].cancelled()
    assert process.batches == [[1, 2, 3]]
    assert await guarded(batcher.submit(5)) == 10  # and the batcher still works


async def test_close_answers_everything_submitted_then_refuses_new_work() -> None:
    process = Recorder()
    batcher: Batcher[int, int] = Batcher(process, max_weight=100, max_wait_s=HANG_GUARD_S * 10)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert batcher.pending == 5
    await guarded(batcher.close())  # does not wait out max_wait_s: close flushes at once
    assert [t.result() for t in tasks] == [0, 2, 4, 6, 8]
    with pytest.raises(NotReady):
        await batcher.submit(1)


async def test_max_weight_zero_disables_batching() -> None:
    process = Recorder()
    batcher: Batcher[int, int] = Batcher(process, max_weight=0, max_wait_s=0.05)
    assert not batcher.enabled
    results = await guarded(asyncio.gather(*(batcher.submit(i) for i in range(3))))
    assert results == [0, 2, 4]
    assert process.batches == [[0], [1], [2]]


async def test_batches_run_through_the_given_runner_on_a_worker_thread() -> None:
    loop = asyncio.get_running_loop()
    threads: set[str] = set()

    def process(items: list[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        return [i + 1 for i in items]

    async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await loop.run_in_executor(None, fn, *args)

    batcher: Batcher[int, int] = Batcher(process, in_thread, max_weight=8, max_wait_s=0.01)
    results = await guarded(asyncio.gather(*(batcher.submit(i) for i in range(20))))
    assert results == [i + 1 for i in range(20)]
    assert threading.main_thread().name not in threads
