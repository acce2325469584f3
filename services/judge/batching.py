"""One judge engine behind its own worker thread, a cross-request batcher and the judgment cache.

Concurrent Judge calls' pairs for an engine are scored in one `engine.score` call (Batcher), identical
pairs once. Each engine has its own thread, so a slow judge (a remote LLM) does not hold up the others.
A cheap engine (microseconds a pair) runs on the event loop, unbatched and uncached.

Metrics:
- tailsynth_judge_batch_pairs{engine}: pairs scored together in one engine call.
- tailsynth_judge_batch_requests{engine}: Judge calls served by one engine call.
- tailsynth_judge_batch_wait_seconds{engine}: how long the oldest call of a batch waited for it.
- tailsynth_judge_scored_pairs_total{engine}: pairs an engine actually scored (cache misses).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram

from services.core.batcher import Batcher, BatchStats
from services.judge.cache import ScoreCache
from services.judge.engine import JudgeEngine, Pair

R = TypeVar("R")

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
BATCH_PAIRS = Histogram(
    "tailsynth_judge_batch_pairs",
    "Pairs scored together in one engine call.",
    ["engine"],
    buckets=SIZE_BUCKETS,
)
BATCH_REQUESTS = Histogram(
    "tailsynth_judge_batch_requests",
    "Judge calls served by one engine call.",
    ["engine"],
    buckets=SIZE_BUCKETS,
)
BATCH_WAIT = Histogram(
    "tailsynth_judge_batch_wait_seconds",
    "Time the oldest Judge call of a batch waited before the engine call ran.",
    ["engine"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
SCORED = Counter(
    "tailsynth_judge_scored_pairs_total", "Pairs scored by an engine (cache misses).", ["engine"]
)


class EngineScorer:
    def __init__(
        self,
        engine: JudgeEngine,
        cache: ScoreCache | None,
        *,
        max_pairs: int,
        wait_ms: float,
        on_work: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.cache = None if engine.cheap else cache
        self._on_work = on_work
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"judge-{engine.name}")
        self.batcher: Batcher[list[Pair], list[float]] = Batcher(
            self._score_batch,
            self._run,
            max_weight=0 if engine.cheap else max_pairs,
            max_wait_s=wait_ms / 1000,
            weight=len,
            on_batch=self._observe,
        )

    @property
    def name(self) -> str:
        return self.engine.name

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self.engine.cheap:
            result = fn(*args)
        else:
            work = functools.partial(contextvars.copy_context().run, fn, *args)
            result = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        self._on_work()
        return result

    def _observe(self, stats: BatchStats) -> None:
        BATCH_REQUESTS.labels(self.name).observe(stats.items)
        BATCH_PAIRS.labels(self.name).observe(stats.weight)
        BATCH_WAIT.labels(self.name).observe(stats.oldest_wait_s)

    def _score_batch(self, items: list[list[Pair]]) -> list[list[float]]:
        """Every call's pairs in one engine call, each distinct pair once; scores split back per call."""
        distinct = list(dict.fromkeys(pair for item in items for pair in item))
        scores = self.engine.score(distinct)
        if len(scores) != len(distinct):
            raise RuntimeError(
                f"judge engine {self.name} returned {len(scores)} scores for {len(distinct)} pairs"
            )
        bad = [s for s in scores if not (math.isfinite(s) and 0 <= s <= 1)]
        if bad:
            raise RuntimeError(f"judge engine {self.name} returned scores outside [0, 1]: {bad[:3]}")
        SCORED.labels(self.name).inc(len(distinct))
        by_pair = dict(zip(distinct, scores, strict=True))
        return [[by_pair[pair] for pair in item] for item in items]

    async def load(self) -> None:
        await self._run(self.engine.load)

    async def score(self, pairs: list[Pair], *, use_cache: bool = True) -> list[tuple[float, bool]]:
        """(score, came from the cache) for each pair."""
        cache = self.cache if use_cache else None
        version = self.engine.version
        cached = await cache.get_many(self.name, version, pairs) if cache else [None] * len(pairs)
        missing = [i for i, score in enumerate(cached) if score is None]
        out = [(score, True) if score is not None else (0.0, False) for score in cached]
        if missing:
            todo = [pairs[i] for i in missing]
            fresh = await self.batcher.submit(todo)
            for i, score in zip(missing, fresh, strict=True):
                out[i] = (score, False)
            if cache:
                await cache.set_many(self.name, version, todo, fresh)
        return out

    async def close(self) -> None:
        await self.batcher.close()
        await self._run(self.engine.close)
        self._executor.shutdown(wait=False, cancel_futures=True)
