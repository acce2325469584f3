"""While Redis is unreachable accepted pairs wait in the spool, and reach the stream exactly once later."""

from __future__ import annotations

import uuid
from pathlib import Path

from redis.asyncio import Redis

from services.core.redis_server import EmbeddedRedis, free_port
from services.pipeline.models import SynthesisResult
from services.store.spool import Spool
from services.store.stream import TrainingStream
from services.store.writer import PairWriter
from tests import results
from tests.results import pair


def result(query: str, products: list[str]) -> SynthesisResult:
    return results.result(query, [pair(query, p) for p in products], timings_ms={})


def test_spool_round_trip_and_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.batches() == []
    first = spool.put([{"pair_id": "a", "query": "q ü"}])
    second = spool.put([{"pair_id": "b"}, {"pair_id": "c"}])
    assert spool.batches() == [first, second]
    assert spool.read(first) == [{"pair_id": "a", "query": "q ü"}]
    spool.remove(first)
    spool.remove(first)  # a second remover (another process) is harmless
    assert spool.batches() == [second]
    assert spool.read(first) == []
    assert not list((tmp_path / "spool").glob(".*.tmp"))


async def test_pairs_spool_while_redis_is_down_and_replay_once(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    spool = Spool(tmp_path / "spool")
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    offline = PairWriter(TrainingStream(down, key, f"{key}:seen"), spool)
    written = await offline.write(result("deck over", ["P1", "P2"]))
    assert (written.appended, written.spooled) == (0, 2)
    assert len(spool.batches()) == 1
    await down.aclose()

    redis = Redis.from_url(redis_server.url)
    online = PairWriter(TrainingStream(redis, key, f"{key}:seen"), spool)
    # The same pair also arrived directly (another gateway): the replay must not add it again.
    assert (await online.write(result("deck over", ["P2"]))).appended == 1
    assert await online.replay() == 1
    assert spool.batches() == []
    assert await online.replay() == 0
    products = [fields[b"product_id"] for _, fields in await redis.xrange(key)]
    assert sorted(products) == [b"P1", b"P2"]
    await redis.aclose()
