"""Redis on the request path: a time budget for every call, and a breaker that stops calling a failing Redis.

A stalled Redis (a paused server, a partition) accepts connections and answers nothing, so without a
budget each call waits out its socket timeout, and a request makes several calls (cache lookup, pair
append, cache store). Here every command and pipeline of the gateway's client must finish within
`timeout_s` or fail with a redis TimeoutError; after `failures_to_open` failures in a row the breaker
opens and calls fail at once with RedisBreakerOpen (a redis ConnectionError, so the callers' fallbacks
apply unchanged: a cache miss, pairs to the spool, a 503 from the queue routes). After `reset_s` one trial
call goes through (half-open): its success closes the breaker, its failure opens it again. A request
thus waits on a stalled Redis at most `failures_to_open * timeout_s` in all, and not at all while the
breaker is open.

A reply from Redis, even an error reply (a missing consumer group, an unknown script), proves it is alive:
only timeouts and connection failures count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class RedisBreakerOpen(RedisConnectionError):
    """Not tried: Redis failed too often just now."""


class CircuitBreaker:
    def __init__(
        self,
        failures_to_open: int,
        reset_s: float,
        on_change: Callable[[BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.reset_s = reset_s
        self.on_change = on_change
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0  # in a row
        self.last_error = ""
        self._opened_at = 0.0
        self._trial_running = False

    def reopens_in_s(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 unless open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(self._opened_at + self.reset_s - self.clock(), 0.0)

    def before_call(self) -> bool:
        """Raise RedisBreakerOpen unless a call may go out; True when it is the half-open trial."""
        if self.state is BreakerState.OPEN and self.reopens_in_s() == 0:
            self._move(BreakerState.HALF_OPEN)
        if self.state is BreakerState.CLOSED:
            return False
        if self.state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        paused = (
            f"for {self.reopens_in_s():.1f}s" if self.state is BreakerState.OPEN else "during a trial call"
        )
        raise RedisBreakerOpen(
            f"redis calls paused {paused} after {self.failures} failures in a row ({self.last_error})"
        )

    def succeeded(self, trial: bool) -> None:
        self.failures = 0
        if trial:
            self._trial_running = False
        if self.state is not BreakerState.CLOSED:
            log.info("redis answers again; breaker closed")
            self._move(BreakerState.CLOSED)

    def failed(self, error: Exception, trial: bool) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"[:200]
        if trial:
            self._trial_running = False
        if trial or (self.state is BreakerState.CLOSED and self.failures >= self.failures_to_open):
            if self.state is BreakerState.CLOSED:
                log.warning(
                    "redis failed %d times in a row (%s): not calling it for %.1fs",
                    self.failures,
                    self.last_error,
                    self.reset_s,
                )
            self._opened_at = self.clock()
            self._move(BreakerState.OPEN)

    def abandoned(self, trial: bool) -> None:
        """The call was cancelled before Redis answered or failed (its client went away)."""
        if trial:
            self._trial_running = False

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(state)


class CallBudget:
    """Runs one Redis call under the breaker and the time limit; reports each outcome."""

    def __init__(
        self, breaker: CircuitBreaker, timeout_s: float, observe: Callable[[str], None] | None = None
    ) -> None:
        self.breaker = breaker
        self.timeout_s = timeout_s
        self.observe = observe or (lambda outcome: None)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            trial = self.breaker.before_call()
        except RedisBreakerOpen:
            self.observe("skipped")
            raise
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except TimeoutError:  # asyncio's: the call outlived its budget
            failure = RedisTimeoutError(f"no answer within {self.timeout_s:g}s")
            self._failed(failure, trial, "timeout")
            raise failure from None
        except RedisTimeoutError as error:
            self._failed(error, trial, "timeout")
            raise
        except (RedisConnectionError, OSError) as error:
            self._failed(error, trial, "error")
            raise
        except asyncio.CancelledError:
            self.breaker.abandoned(trial)
            raise
        except Exception:  # an error reply: Redis is there
            self.breaker.succeeded(trial)
            self.observe("ok")
            raise
        self.breaker.succeeded(trial)
        self.observe("ok")
        return result

    def _failed(self, error: Exception, trial: bool, outcome: str) -> None:
        self.breaker.failed(error, trial)
        self.observe(outcome)


class BudgetedPipeline(Pipeline):
    budget: CallBudget

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return await self.budget.run(lambda: super(BudgetedPipeline, self).execute(raise_on_error))


class BudgetedRedis(Redis):
    """A redis.asyncio client whose every command and pipeline goes through a CallBudget."""

    budget: CallBudget

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await self.budget.run(lambda: super(BudgetedRedis, self).execute_command(*args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> BudgetedPipeline:
        pipe = BudgetedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.budget = self.budget
        return pipe


def budgeted_client(url: str, budget: CallBudget) -> BudgetedRedis:
    """Socket timeouts within the budget. A timeout is not retried (the breaker decides when to try again);
    a connection error is, once, at once, on a new connection: after Redis restarts, every pooled
    connection is dead, and each would otherwise fail one call."""
    client = BudgetedRedis.from_url(
        url,
        socket_timeout=budget.timeout_s,
        socket_connect_timeout=budget.timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    assert isinstance(client, BudgetedRedis)  # from_url builds cls
    client.budget = budget
    return client
