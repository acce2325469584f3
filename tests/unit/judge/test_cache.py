"""The judgment cache against a real embedded Redis-compatible server."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.core.redis_server import EmbeddedRedis, free_port
from services.judge.cache import KEY_PREFIX, ScoreCache, cache_key
from services.judge.engine import PairKind

P, R = PairKind.QUERY_PRODUCT, PairKind.QUERY_REWRITE


def lookups(engine: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "tailsynth_judge_cache_lookups_total", {"engine": engine, "result": result}
    )
    return value or 0.0


def test_keys_follow_engine_version_kind_query_and_text() -> None:
    base = cache_key("embedding", "v1", ("drill", "cordless drill", P))
    variants = [
        cache_key("lexical", "v1", ("drill", "cordless drill", P)),
        cache_key("embedding", "v2", ("drill", "cordless drill", P)),
        cache_key("embedding", "v1", ("drill", "cordless drill", R)),
        cache_key("embedding", "v1", ("drills", "cordless drill", P)),
        cache_key("embedding", "v1", ("drill", "cordless drill ", P)),
        # the separator cannot be forged by moving text between query and text
        cache_key("embedding", "v1", ("drill cordless", "drill", P)),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert base == cache_key("embedding", "v1", ("drill", "cordless drill", P))
    long_key = cache_key("embedding", "v1", ("drill", "x" * 20_000, P))
    assert long_key.startswith(KEY_PREFIX) and len(long_key) == len(base)


async def test_scores_round_trip_with_a_ttl(redis_server: EmbeddedRedis) -> None:
    cache = ScoreCache(redis_server.url, ttl_s=60, timeout_s=1)
    pairs = [("drill", "cordless drill", P), ("drill", "velvet pillow", P), ("drill", "a drill", R)]
    before_hits, before_misses = lookups("rt", "hit"), lookups("rt", "miss")
    assert await cache.get_many("rt", "v1", pairs) == [None, None, None]
    await cache.set_many("rt", "v1", pairs[:2], [0.875, 0.125])
    assert await cache.get_many("rt", "v1", pairs) == [0.875, 0.125, None]
    assert await cache.get_many("rt", "v2", pairs) == [None, None, None]
    assert lookups("rt", "hit") - before_hits == 2
    assert lookups("rt", "miss") - before_misses == 7
    client = Redis.from_url(redis_server.url)
    ttl = await client.ttl(cache_key("rt", "v1", pairs[0]))
    await client.aclose()
    assert 0 < ttl <= 60
    await cache.close()


async def test_unreadable_entries_are_misses(redis_server: EmbeddedRedis) -> None:
    cache = ScoreCache(redis_server.url, ttl_s=60, timeout_s=1)
    pairs = [("q", "a", P), ("q", "b", P), ("q", "c", P)]
    client = Redis.from_url(redis_server.url)
    await client.set(cache_key("bad", "v1", pairs[0]), b"not a number")
    await client.set(cache_key("bad", "v1", pairs[1]), b"1.5")
    await client.set(cache_key("bad", "v1", pairs[2]), b"nan")
    await client.aclose()
    assert await cache.get_many("bad", "v1", pairs) == [None, None, None]
    await cache.close()


async def test_a_redis_outage_degrades_to_misses_and_backs_off(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    cache = ScoreCache(server.url, ttl_s=60, timeout_s=0.5)
    pair = ("drill", "cordless drill", P)
    await cache.set_many("down", "v1", [pair], [0.5])
    assert await cache.get_many("down", "v1", [pair]) == [0.5]
    server.stop()

    errors_before = REGISTRY.get_sample_value("tailsynth_judge_cache_errors_total", {"op": "get"}) or 0.0
    skipped_before = lookups("down", "skipped")
    assert await cache.get_many("down", "v1", [pair]) == [None]
    assert not cache.available
    # within the back-off nobody waits on Redis again: counted as skipped, no new error
    assert await cache.get_many("down", "v1", [pair, pair]) == [None, None]
    await cache.set_many("down", "v1", [pair], [0.25])
    errors_after = REGISTRY.get_sample_value("tailsynth_judge_cache_errors_total", {"op": "get"}) or 0.0
    assert errors_after - errors_before == 1
    assert lookups("down", "skipped") - skipped_before == 3
    await cache.close()


async def test_an_unreachable_url_never_raises() -> None:
    cache = ScoreCache(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60, timeout_s=0.2)
    pair = ("drill", "cordless drill", P)
    await cache.set_many("nowhere", "v1", [pair], [0.5])
    assert await cache.get_many("nowhere", "v1", [pair]) == [None]
    await cache.close()
