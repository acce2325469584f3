"""The gateway's Redis budget against a real valkey-server, paused (SIGSTOP) or gone, and the breaker's states."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import pytest
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.core.redis_server import EmbeddedRedis
from services.gateway.redis_budget import (
    BreakerState,
    BudgetedRedis,
    CallBudget,
    CircuitBreaker,
    RedisBreakerOpen,
    budgeted_client,
)

TIMEOUT_S = 0.3
SLACK_S = 0.7  # scheduling on two busy cores; a call without the budget would wait 5 s


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path / "redis")
    redis.start()
    yield redis
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGCONT)  # a paused server cannot be stopped
    redis.stop()


@pytest.fixture
async def outcomes() -> list[str]:
    return []


@pytest.fixture
async def budget(outcomes: list[str]) -> CallBudget:
    return CallBudget(CircuitBreaker(2, reset_s=1.0), TIMEOUT_S, observe=outcomes.append)


@pytest.fixture
async def client(server: EmbeddedRedis, budget: CallBudget) -> AsyncIterator[BudgetedRedis]:
    redis = budgeted_client(server.url, budget)
    yield redis
    await redis.aclose()


def pause(server: EmbeddedRedis) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def resume(server: EmbeddedRedis) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)


async def timed(call: Awaitable[object]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await call
    except RedisError as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


async def test_a_paused_redis_costs_two_timeouts_then_nothing_until_it_answers_again(
    server: EmbeddedRedis, client: BudgetedRedis, budget: CallBudget, outcomes: list[str]
) -> None:
    await client.set("key", "value")
    pause(server)
    first = await timed(client.get("key"))
    async with client.pipeline(transaction=False) as pipe:
        pipe.get("key")
        pipe.get("other")
        second = await timed(pipe.execute())
    for elapsed, error in (first, second):
        assert isinstance(error, RedisTimeoutError), error
        assert elapsed < TIMEOUT_S + SLACK_S, elapsed
    assert budget.breaker.state is BreakerState.OPEN

    elapsed, error = await timed(client.get("key"))
    assert isinstance(error, RedisBreakerOpen) and elapsed < 0.05
    assert "2 failures in a row" in str(error) and "no answer within" in str(error)

    await asyncio.sleep(1.0)  # reset_s: the next call is the half-open trial, and it fails
    elapsed, error = await timed(client.get("key"))
    assert isinstance(error, RedisTimeoutError) and elapsed < TIMEOUT_S + SLACK_S
    assert budget.breaker.state is BreakerState.OPEN

    resume(server)
    await asyncio.sleep(1.0)
    assert await client.get("key") == b"value"
    assert budget.breaker.state is BreakerState.CLOSED and budget.breaker.failures == 0
    assert outcomes == ["ok", "timeout", "timeout", "skipped", "timeout", "ok"]


async def test_error_replies_prove_redis_is_alive(client: BudgetedRedis, budget: CallBudget) -> None:
    await client.set("text", "not a stream")
    for _ in range(3):
        with pytest.raises(ResponseError):
            await client.xlen("text")
    assert budget.breaker.state is BreakerState.CLOSED and budget.breaker.failures == 0


async def test_a_dead_redis_opens_the_breaker_without_waiting(
    server: EmbeddedRedis, client: BudgetedRedis, budget: CallBudget
) -> None:
    server.stop()
    for _ in range(2):
        elapsed, error = await timed(client.get("key"))
        assert error is not None and not isinstance(error, RedisBreakerOpen) and elapsed < 0.5
    with pytest.raises(RedisBreakerOpen):
        await client.get("key")
    server.start()
    await asyncio.sleep(1.0)
    assert await client.ping()
    assert budget.breaker.state is BreakerState.CLOSED


async def test_connections_pooled_before_a_redis_restart_cost_no_failure(
    server: EmbeddedRedis, client: BudgetedRedis, budget: CallBudget, outcomes: list[str]
) -> None:
    await client.set("key", "value")  # the pool now holds a connection
    server.stop()
    server.start()  # same port, same append-only file: the pooled connection is dead
    assert await client.get("key") == b"value"
    assert budget.breaker.failures == 0 and outcomes == ["ok", "ok"]


def test_half_open_lets_one_trial_through_at_a_time() -> None:
    now = [100.0]
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(1, reset_s=5.0, on_change=changes.append, clock=lambda: now[0])
    assert breaker.before_call() is False
    breaker.failed(OSError("refused"), trial=False)
    assert breaker.state is BreakerState.OPEN and breaker.reopens_in_s() == 5.0
    now[0] += 5.0
    assert breaker.before_call() is True  # the trial
    with pytest.raises(RedisBreakerOpen, match="during a trial call"):
        breaker.before_call()
    breaker.abandoned(trial=True)  # its client went away: the next call is the trial
    assert breaker.before_call() is True
    breaker.succeeded(trial=True)
    assert breaker.state is BreakerState.CLOSED and breaker.before_call() is False
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
