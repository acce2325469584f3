"""Training-store sink: Redis Stream (consumer group) -> Parquet files, acknowledged only when durable.

Accepted pairs go to pairs-*.parquet, each synthesis's ranked rewrites to rewrites-*.parquet.
At start the sink first re-reads its own pending entries (delivered before a crash, never acked),
then new ones. An id already in the Parquet store is never written again, so redelivery after
a crash between write and ack cannot duplicate a pair or a rewrites record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core.consumers import backoff_s, ensure_group, sleep_unless_stopped, stream_entries
from services.core.durable import publish
from services.store.stream import PAIR_COLUMNS, REWRITES_COLUMNS, Column, entry_id, is_pair

log = logging.getLogger(__name__)

ARROW_TYPES = {"string": pa.string(), "float32": pa.float32(), "float64": pa.float64()}


def parquet_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """A store file's schema: the entry's columns, then the stream id it was read under."""
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in columns] + [("stream_id", pa.string())])


SCHEMA = parquet_schema(PAIR_COLUMNS)
REWRITES_SCHEMA = parquet_schema(REWRITES_COLUMNS)


def _stored_ids(directory: Path, prefix: str, column: str) -> set[str]:
    ids: set[str] = set()
    for path in sorted(directory.glob(f"{prefix}-*.parquet")):
        ids.update(pq.read_table(path, columns=[column]).column(column).to_pylist())
    return ids


def stored_pair_ids(directory: Path) -> set[str]:
    return _stored_ids(directory, "pairs", "pair_id")


def stored_record_ids(directory: Path) -> set[str]:
    return _stored_ids(directory, "rewrites", "record_id")


def write_parquet_durably(
    directory: Path, rows: list[dict[str, object]], prefix: str = "pairs", schema: pa.Schema = SCHEMA
) -> Path:
    """Write to a temporary file, fsync, rename into place, fsync the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    name = f"{prefix}-{stamp}-{str(rows[0]['stream_id']).replace('-', '_')}"
    target = directory / f"{name}.parquet"
    tmp = directory / f".{name}.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    publish(tmp, target)
    return target


def _row(stream_id: str, fields: dict[str, str]) -> dict[str, object]:
    """A stream entry as a Parquet row; fields an older writer did not send read as '' (or 0.0)."""
    row: dict[str, object] = {}
    for column in PAIR_COLUMNS if is_pair(fields) else REWRITES_COLUMNS:
        raw = fields.get(column.name, "")
        row[column.name] = raw if column.type == "string" else float(raw or 0.0)
    row["stream_id"] = stream_id
    return row


class ParquetSink:
    def __init__(
        self, redis: Redis, stream_key: str, group: str, consumer: str, directory: Path, batch: int
    ) -> None:
        self.redis = redis
        self.stream_key = stream_key
        self.group = group
        self.consumer = consumer
        self.directory = directory
        self.batch = batch
        self.stored = stored_pair_ids(directory)
        self.stored_records = stored_record_ids(directory)

    async def ensure_group(self) -> None:
        await ensure_group(self.redis, self.stream_key, self.group)

    async def _read(self, pending: bool, block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
        """One batch: this consumer's own unacked entries (pending) or new ones."""
        reply: Any = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream_key: "0" if pending else ">"},
            count=self.batch,
            block=block_ms,
        )
        return [entry for _, batch in reply or [] for entry in stream_entries(batch)]

    async def _store(self, entries: list[tuple[str, dict[str, str]]]) -> int:
        """Write the batch's new pairs and rewrites records durably, then ack every entry; return pairs written."""
        pairs: list[dict[str, object]] = []
        records: list[dict[str, object]] = []
        batch_ids: set[str] = set()
        for stream_id, fields in entries:
            try:
                eid = entry_id(fields)
            except KeyError:
                log.warning("stream entry %s has no id; skipped: %r", stream_id, sorted(fields))
                continue
            if eid and eid not in self.stored and eid not in self.stored_records and eid not in batch_ids:
                batch_ids.add(eid)
                (pairs if is_pair(fields) else records).append(_row(stream_id, fields))
        if records:
            path = await asyncio.to_thread(
                write_parquet_durably, self.directory, records, "rewrites", REWRITES_SCHEMA
            )
            self.stored_records |= {str(r["record_id"]) for r in records}
            log.info("wrote %d rewrites records to %s", len(records), path.name)
        if pairs:
            path = await asyncio.to_thread(write_parquet_durably, self.directory, pairs)
            self.stored |= {str(r["pair_id"]) for r in pairs}
            log.info("wrote %d pairs to %s", len(pairs), path.name)
        await self.redis.xack(self.stream_key, self.group, *[i for i, _ in entries])
        return len(pairs)

    async def drain_once(self, block_ms: int | None = None, pending: bool = False) -> int:
        """Read one batch (own pending or new entries), write it durably, ack it; return pairs written."""
        entries = await self._read(pending, block_ms)
        return await self._store(entries) if entries else 0

    async def recover_pending(self) -> None:
        """Store and ack every entry this consumer read before a crash or outage and never acked."""
        while entries := await self._read(pending=True):
            await self._store(entries)

    async def run(self, block_ms: int, stop: asyncio.Event) -> None:
        """Drain until stop is set; ride out Redis outages (re-reading own pending entries after each)."""
        failures = 0
        recovered = False
        while not stop.is_set():
            try:
                if not recovered:
                    await self.ensure_group()
                    await self.recover_pending()
                    recovered = True
                await self.drain_once(block_ms=block_ms)
                failures = 0
            except RedisError as error:
                failures += 1
                recovered = False
                log.warning("redis unavailable (%s); retrying", error)
                await sleep_unless_stopped(stop, backoff_s(failures))
