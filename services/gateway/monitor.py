"""Is the system degraded? Backends, Redis, the spool and backends that keep flipping, for /readyz and metrics.

The gateway checks all of them every `health_interval_s` in the background (and on every /readyz), so the
gauges stay current between scrapes and state changes are counted even when nobody asks (a backend down
for less than one interval can be missed). Degraded means the gateway still answers but something needs
attention:

- Redis unreachable, or its breaker open: answers are uncached, accepted pairs wait in the spool;
- the spool holds batches: accepted pairs not yet in the training stream;
- a backend changed state `flap_changes` times within `flap_window_s`.

A backend that is not SERVING makes the gateway unavailable (503), as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from services.core.consumers import sleep_unless_stopped
from services.gateway.metrics import (
    BACKEND_CHANGES,
    BACKEND_UP,
    REDIS_UP,
    SPOOL_BATCHES,
    SPOOL_OLDEST_AGE,
)
from services.gateway.redis_budget import BreakerState, BudgetedRedis
from services.pipeline.synthesize import SynthesisPipeline
from services.store.spool import Spool

log = logging.getLogger(__name__)


class FlapCounter:
    """State changes of each backend within a sliding window."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._serving: dict[str, bool] = {}
        self._changes: dict[str, deque[float]] = {}

    def observe(self, service: str, serving: bool) -> None:
        previous = self._serving.get(service)
        self._serving[service] = serving
        BACKEND_UP.labels(service).set(1 if serving else 0)
        if previous is not None and previous != serving:
            self._changes.setdefault(service, deque()).append(self.clock())
            BACKEND_CHANGES.labels(service).inc()
            log.warning("%s is %s", service, "SERVING again" if serving else "no longer SERVING")

    def changes(self, service: str) -> int:
        recent = self._changes.get(service, deque())
        horizon = self.clock() - self.window_s
        while recent and recent[0] < horizon:
            recent.popleft()
        return len(recent)


@dataclass(frozen=True)
class Health:
    backends: dict[str, bool]
    redis_reachable: bool
    breaker: BreakerState
    spooled_batches: int
    spool_oldest_age_s: float | None
    changes: dict[str, int]  # per backend, within the flap window
    degraded: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(self.backends.values())

    @property
    def status(self) -> str:
        if not self.ready:
            return "unavailable"
        return "degraded" if self.degraded else "ready"


class HealthMonitor:
    def __init__(
        self,
        pipeline: SynthesisPipeline,
        redis: BudgetedRedis,
        spool: Spool,
        flap_window_s: float,
        flap_changes: int,
    ) -> None:
        self.pipeline = pipeline
        self.redis = redis
        self.spool = spool
        self.flap_changes = flap_changes
        self.flaps = FlapCounter(flap_window_s)

    async def _redis_reachable(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # the budgeted client fails fast; any failure means unreachable
            return False

    async def check(self) -> Health:
        backends, reachable = await asyncio.gather(self.pipeline.healthy(), self._redis_reachable())
        for service, serving in backends.items():
            self.flaps.observe(service, serving)
        REDIS_UP.set(1 if reachable else 0)
        batches = self.spool.batches()
        oldest = self.spool.oldest_age_s(batches)
        SPOOL_BATCHES.set(len(batches))
        SPOOL_OLDEST_AGE.set(oldest or 0.0)
        breaker = self.redis.budget.breaker
        changes = {service: self.flaps.changes(service) for service in backends}

        degraded = []
        if not reachable:
            degraded.append(
                f"redis unreachable (breaker {breaker.state.value}: {breaker.last_error or 'no answer'})"
            )
        if batches:
            degraded.append(
                f"{len(batches)} batches of accepted pairs wait in the spool, the oldest for {oldest or 0:.0f}s"
            )
        for service, count in changes.items():
            if count >= self.flap_changes:
                degraded.append(
                    f"{service} changed state {count} times in the last {self.flaps.window_s:.0f}s (flapping)"
                )
        return Health(backends, reachable, breaker.state, len(batches), oldest, changes, degraded)

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Check every interval until stop is set, so the metrics stay current between /readyz calls."""
        while await sleep_unless_stopped(stop, interval_s):
            try:
                await self.check()
            except Exception as error:  # a check must never end the loop
                log.warning("health check failed: %r", error)
