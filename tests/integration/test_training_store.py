"""Training stream and Parquet sink against a real Redis-compatible server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from redis.asyncio import Redis

from services.pipeline.ids import pair_id
from services.pipeline.models import Pair, Rewrite, SynthesisResult
from services.store.preferences import export_preferences
from services.store.sink import ParquetSink
from services.store.spool import Spool
from services.store.stream import TrainingStream
from services.store.writer import PairWriter, Written
from tests import results
from tests.results import pair, rewrite


def result(
    query: str,
    accepted: list[str],
    rejected: list[str] = (),
    rewrites: list[Rewrite] = (),  # type: ignore[assignment]
) -> SynthesisResult:
    def one(pid: str, ok: bool) -> Pair:
        return pair(query, pid, 0.9 if ok else 0.1, ok, retrieved_by=[query, "a rewrite"])

    return results.result(
        query, [one(p, True) for p in accepted] + [one(p, False) for p in rejected], rewrites
    )


@pytest.fixture
def keys() -> tuple[str, str]:
    stream = f"test:{uuid.uuid4().hex}"
    return stream, f"{stream}:seen"


def stored_rows(directory: Path) -> list[dict[str, object]]:
    return [
        row for path in sorted(directory.glob("pairs-*.parquet")) for row in pq.read_table(path).to_pylist()
    ]


async def test_only_accepted_pairs_enter_the_stream_and_each_only_once(
    redis: Redis, keys: tuple[str, str]
) -> None:
    stream = TrainingStream(redis, *keys)
    assert await stream.append(result("deck over", ["P1", "P2"], rejected=["P3"])) == 2
    assert await stream.append(result("Deck  Over", ["P2", "P4"])) == 1  # P2 is the same pair
    entries = await redis.xrange(keys[0])
    assert [e[1][b"product_id"] for e in entries] == [b"P1", b"P2", b"P4"]
    first = entries[0][1]
    assert first[b"query"] == b"deck over"
    assert first[b"rewrite"] == b"a rewrite"
    assert first[b"pipeline_version"] == b"test"
    assert first[b"pair_id"].decode() == pair_id("deck over", "P1")


async def test_sink_writes_parquet_then_acks(redis: Redis, keys: tuple[str, str], tmp_path: Path) -> None:
    await TrainingStream(redis, *keys).append(result("bath thermometer", ["B1", "B2", "B3"]))
    sink = ParquetSink(redis, keys[0], "sink", "c1", tmp_path, batch=100)
    await sink.ensure_group()
    assert await sink.drain_once(block_ms=100) == 3
    rows = stored_rows(tmp_path)
    assert sorted(r["product_id"] for r in rows) == ["B1", "B2", "B3"]
    assert {r["query"] for r in rows} == {"bath thermometer"}
    assert (await redis.xpending(keys[0], "sink"))["pending"] == 0
    assert not list(tmp_path.glob(".*.tmp"))


async def test_entries_read_before_a_crash_are_recovered_once(
    redis: Redis, keys: tuple[str, str], tmp_path: Path
) -> None:
    await TrainingStream(redis, *keys).append(result("salon chair", ["S1", "S2"]))
    crashed = ParquetSink(redis, keys[0], "sink", "c1", tmp_path, batch=100)
    await crashed.ensure_group()
    # The crashed sink read the entries but died before writing or acking them.
    await redis.xreadgroup("sink", "c1", {keys[0]: ">"}, count=100)
    assert (await redis.xpending(keys[0], "sink"))["pending"] == 2

    restarted = ParquetSink(redis, keys[0], "sink", "c1", tmp_path, batch=100)
    assert await restarted.drain_once(pending=True) == 2
    assert sorted(r["product_id"] for r in stored_rows(tmp_path)) == ["S1", "S2"]
    assert (await redis.xpending(keys[0], "sink"))["pending"] == 0


async def test_redelivery_after_a_durable_write_does_not_duplicate(
    redis: Redis, keys: tuple[str, str], tmp_path: Path
) -> None:
    await TrainingStream(redis, *keys).append(result("turquoise pillows", ["T1", "T2"]))
    first = ParquetSink(redis, keys[0], "sink", "c1", tmp_path, batch=100)
    await first.ensure_group()
    # Written durably, then crashed before the ack: simulate by resetting the group to redeliver.
    assert await first.drain_once(block_ms=100) == 2
    await redis.xgroup_setid(keys[0], "sink", id="0")

    second = ParquetSink(redis, keys[0], "sink", "c2", tmp_path, batch=100)
    assert second.stored == {pair_id("turquoise pillows", "T1"), pair_id("turquoise pillows", "T2")}
    assert await second.drain_once(block_ms=100) == 0
    assert len(stored_rows(tmp_path)) == 2
    assert (await redis.xpending(keys[0], "sink"))["pending"] == 0


async def test_recovery_reads_every_pending_batch_even_when_all_are_already_stored(
    redis: Redis, keys: tuple[str, str], tmp_path: Path
) -> None:
    await TrainingStream(redis, *keys).append(result("porch light", ["L1", "L2", "L3"]))
    first = ParquetSink(redis, keys[0], "sink", "c1", tmp_path, batch=1)
    await first.ensure_group()
    for _ in range(3):
        assert await first.drain_once(block_ms=100) == 1
    # Written and acked, then redelivered (as after a crash before the ack): three pending batches of one.
    await redis.xgroup_setid(keys[0], "sink", id="0")
    await redis.xreadgroup("sink", "c1", {keys[0]: ">"}, count=10)
    restarted = ParquetSink(redis, keys[0], "sink", "c1", tmp_path, batch=1)
    await restarted.recover_pending()
    assert (await redis.xpending(keys[0], "sink"))["pending"] == 0
    assert len(stored_rows(tmp_path)) == 3


async def test_each_synthesis_stores_its_ranked_rewrites_once_beside_its_pairs(
    redis: Redis, keys: tuple[str, str], tmp_path: Path
) -> None:
    ranked = [
        rewrite("deck paint", 0.8),
        rewrite("deck stain", 0.5, "catalog:prf"),
        rewrite("dek", 0.1, accepted=False),
    ]
    writer = PairWriter(TrainingStream(redis, *keys), Spool(tmp_path / "spool"))
    written = await writer.write(result("deck over", ["P1", "P2"], rewrites=ranked))
    assert (written.appended, written.duplicates) == (2, 0)  # the rewrites record is not counted as a pair
    again = await writer.write(result("Deck  Over", ["P1"], rewrites=ranked))  # same query and version
    assert (again.appended, again.duplicates) == (0, 1)
    # A fresh synthesis of the same query ranks new samples: a new record (more preference data).
    await writer.write(result("deck over", [], rewrites=[rewrite("deck resurfacer", 0.9)]))
    assert await writer.write(result("no pairs", [], rewrites=ranked[:1])) == Written(0, 0, 0)

    sink = ParquetSink(redis, keys[0], "sink", "c1", tmp_path / "store", batch=100)
    await sink.ensure_group()
    assert await sink.drain_once(block_ms=100) == 2
    records = [
        r
        for p in sorted((tmp_path / "store").glob("rewrites-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    assert sorted(r["query"] for r in records) == ["deck over", "deck over", "no pairs"]
    assert len(stored_rows(tmp_path / "store")) == 2
    restarted = ParquetSink(redis, keys[0], "sink", "c2", tmp_path / "store", batch=100)
    assert restarted.stored_records == {r["record_id"] for r in records}


async def test_rewrites_spooled_while_redis_is_down_reach_the_store_later(
    redis: Redis, keys: tuple[str, str], tmp_path: Path
) -> None:
    down = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    spool = Spool(tmp_path / "spool")
    spooled = await PairWriter(TrainingStream(down, *keys), spool).write(
        result("porch swing", ["W1"], rewrites=[rewrite("hanging porch swing", 0.7)])
    )
    assert spooled.spooled == 1  # pairs only
    assert await PairWriter(TrainingStream(redis, *keys), spool).replay() == 1
    kinds = [fields.get(b"kind", b"pair") for _, fields in await redis.xrange(keys[0])]
    assert kinds == [b"pair", b"rewrites"]
    await down.aclose()


async def test_preferences_export_from_the_store(redis: Redis, keys: tuple[str, str], tmp_path: Path) -> None:
    ranked = [
        rewrite("deck paint", 0.8),
        rewrite("deck stain", 0.78, "catalog:prf"),
        rewrite("dek", 0.1, accepted=False),
    ]
    await TrainingStream(redis, *keys).append(result("deck over", ["P1"], rewrites=ranked))
    sink = ParquetSink(redis, keys[0], "sink", "c1", tmp_path / "store", batch=100)
    await sink.ensure_group()
    await sink.drain_once(block_ms=100)

    out = tmp_path / "prefs.parquet"
    summary = export_preferences(tmp_path / "store", out, margin=0.05)
    rows = pq.read_table(out).to_pylist()
    assert (summary.records, summary.queries, summary.pairs) == (1, 1, 2)
    assert [r["text"] for r in rows[0]["ranking"]] == ["deck paint", "deck stain", "dek"]
    # 0.8 and 0.78 are closer than the margin: unordered; both beat "dek".
    assert {(p["chosen"], p["rejected"]) for p in rows[0]["pairs"]} == {
        ("deck paint", "dek"),
        ("deck stain", "dek"),
    }
    flat = tmp_path / "dpo.jsonl"
    assert export_preferences(tmp_path / "store", flat, margin=0.01, flat=True).rows == 3
    lines = [json.loads(line) for line in flat.read_text().splitlines()]
    assert {line["prompt"] for line in lines} == {"deck over"}
    assert all(line["chosen_reward"] - line["rejected_reward"] >= 0.01 for line in lines)
