"""Async micro-batching: concurrent callers' items go through one blocking batch call.

A Batcher collects submissions until their total weight reaches `max_weight` or the oldest one has
waited `max_wait_s`, then runs `process(items)` once through `run` (the service's worker thread), and
hands each caller its own result. One batch is in flight at a time: submissions that arrive meanwhile
form the next batch, so on a single worker thread batches grow with load instead of queueing.

A batch that raises is retried item by item, so a bad item fails only its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.core.errors import NotReady

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

Process = Callable[[list[In]], list[Out]]
Runner = Callable[..., Awaitable[Any]]  # run(fn, *args) -> fn(*args), e.g. GrpcService.run_blocking


@dataclass
class _Entry(Generic[In, Out]):
    item: In
    weight: int
    arrived: float
    future: asyncio.Future[Out] = field(repr=False)


@dataclass(frozen=True)
class BatchStats:
    """What one dispatched batch held, for metrics."""

    items: int
    weight: int
    oldest_wait_s: float


async def run_inline(fn: Callable[..., Any], *args: Any) -> Any:
    """A runner that calls fn on the event loop thread (tests, cheap functions)."""
    return fn(*args)


class Batcher(Generic[In, Out]):
    def __init__(
        self,
        process: Process[In, Out],
        run: Runner = run_inline,
        *,
        max_weight: int,
        max_wait_s: float,
        weight: Callable[[In], int] = lambda _: 1,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_weight < 0 or max_wait_s < 0:
            raise ValueError("max_weight and max_wait_s must not be negative")
        self._process = process
        self._run = run
        self.max_weight = max_weight
        self.max_wait_s = max_wait_s
        self._weight = weight
        self._on_batch = on_batch
        self._pending: list[_Entry[In, Out]] = []
        self._pending_weight = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[_Entry[In, Out]] = []
        self._closed = False

    @property
    def enabled(self) -> bool:
        """max_weight 0 turns batching off: every submission runs alone, at once."""
        return self.max_weight > 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, item: In) -> Out:
        if self._closed:
            raise NotReady("shutting down: no new work is accepted")
        if not self.enabled:
            return (await self._call([item]))[0]
        loop = asyncio.get_running_loop()
        entry: _Entry[In, Out] = _Entry(item, max(1, self._weight(item)), loop.time(), loop.create_future())
        self._pending.append(entry)
        self._pending_weight += entry.weight
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop())
        try:
            return await entry.future
        except asyncio.CancelledError:
            # A caller that gives up (deadline, disconnect) leaves the queue; a batch it is already in
            # still runs for the others and its result is dropped.
            self._forget(entry)
            raise

    async def close(self) -> None:
        """Refuse new submissions and wait until everything already submitted has been answered."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
        while self._task is not None:
            await asyncio.shield(self._task)

    def _forget(self, entry: _Entry[In, Out]) -> None:
        if entry in self._pending:
            self._pending.remove(entry)
            self._pending_weight -= entry.weight

    async def _loop(self) -> None:
        try:
            while self._pending:
                await self._gather()
                self._inflight = self._take()
                if self._inflight:
                    await self._dispatch(self._inflight)
                self._inflight = []
        except BaseException as error:
            # Only cancellation of the loop itself (event loop shutdown) gets here: nobody may hang.
            for entry in self._inflight + self._pending:
                if not entry.future.done():
                    entry.future.set_exception(NotReady(f"batcher stopped: {error!r}"))
            self._inflight, self._pending, self._pending_weight = [], [], 0
            raise
        finally:
            self._task = None

    async def _gather(self) -> None:
        """Wait until the batch is full, the oldest item has waited max_wait_s, or close() is called."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while self._pending and not self._closed and self._pending_weight < self.max_weight:
            remaining = self._pending[0].arrived + self.max_wait_s - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take(self) -> list[_Entry[In, Out]]:
        batch: list[_Entry[In, Out]] = []
        weight = 0
        while self._pending:
            entry = self._pending[0]
            if batch and weight + entry.weight > self.max_weight:
                break
            self._pending.pop(0)
            self._pending_weight -= entry.weight
            if not entry.future.done():
                batch.append(entry)
                weight += entry.weight
        return batch

    async def _call(self, items: list[In]) -> list[Out]:
        results: list[Out] = await self._run(self._process, items)
        if len(results) != len(items):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        return results

    async def _dispatch(self, batch: list[_Entry[In, Out]]) -> None:
        loop = asyncio.get_running_loop()
        if self._on_batch is not None:
            stats = BatchStats(len(batch), sum(e.weight for e in batch), loop.time() - batch[0].arrived)
            try:
                self._on_batch(stats)
            except Exception:
                log.exception("batch observer failed")
        if len(batch) == 1:
            await self._settle_alone(batch[0])
            return
        try:
            results = await self._call([e.item for e in batch])
        except Exception as error:
            log.info("batch of %d failed (%r); retrying its items one by one", len(batch), error)
            for entry in batch:
                await self._settle_alone(entry)
            return
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)

    async def _settle_alone(self, entry: _Entry[In, Out]) -> None:
        if entry.future.done():
            return
        try:
            result = (await self._call([entry.item]))[0]
        except Exception as error:
            if not entry.future.done():
                entry.future.set_exception(error)
            return
        if not entry.future.done():
            entry.future.set_result(result)
