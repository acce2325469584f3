"""Accepted pairs -> the training store's Redis Stream, each pair exactly once.

A Lua script adds the entry's id to a set and appends to the stream only when the id is new, so a
pair synthesised twice (or by two gateways at once) enters the stream once. Besides one entry per
accepted pair, each synthesis adds one `rewrites` entry: its ranked candidates with their rewards,
the raw material of preference data for training rewriters (`synth export preferences`), the
highest-scoring pairs the judges rejected, and every pair it judged with each judge's score (the
teacher scores and hard negatives of `synth train retriever`).

PAIR_COLUMNS and REWRITES_COLUMNS are the one list of each entry's fields: the stream carries them as
strings, and the sink's Parquet schemas are derived from them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from services.core.text import normalize_query
from services.pipeline.models import SynthesisResult

APPEND_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
end
return false
"""

PAIR = "pair"
REWRITES = "rewrites"
# The rejected pairs a rewrites record keeps: the highest-scoring ones, the negatives closest to acceptance.
MAX_REJECTED = 10


ORIGIN = (
    "where the query comes from: '' or query (a logged query), product:<product_id>:<style> (generated from "
    "that product); files and spooled entries from before the column read ''"
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"  # in Parquet: string, float32 or float64 (the stream holds strings)
    description: str = ""


PAIR_COLUMNS = (
    Column("pair_id", description="hash of the normalised query and the product id"),
    Column("query"),
    Column("product_id"),
    Column("title"),
    Column("score", "float32", "the judges' combined score"),
    Column("label", description="exact, partial or irrelevant"),
    Column("rewrite", description="the first rewrite that retrieved the product, '' if only the query did"),
    Column("retrieved_by", description="JSON list of the texts whose top-k held the product"),
    Column("judges", description="JSON object: each judge engine's score (files before it: absent)"),
    Column("origin", description=ORIGIN),
    Column("pipeline_version"),
    Column("created_at", "float64", "unix time"),
)
# A rewrites entry also carries kind=rewrites in the stream; the sink files it by that and drops it.
REWRITES_COLUMNS = (
    Column("record_id", description="hash of the query, pipeline version and ranking"),
    Column("query"),
    Column("rewrites", description="JSON list of the ranked rewrites with their rewards"),
    Column("dropped", description="JSON list of dropped candidates with reasons"),
    Column(
        "rejected",
        description="JSON list of the highest-scoring judge-rejected pairs {product_id, title, score}; "
        "files written before this column lack it, records spooled before it read ''",
    ),
    Column(
        "judged",
        description="JSON list of every pair judged for the query {product_id, title, score, accepted, "
        "judges, retrieval_score, found_by_query}; absent or '' before it existed",
    ),
    Column("judge_version", description="what the judge served: each engine's version and the policy"),
    Column("origin", description=ORIGIN),
    Column("pipeline_version"),
    Column("created_at", "float64", "unix time"),
)


def is_pair(entry: dict[str, str]) -> bool:
    return entry.get("kind", PAIR) == PAIR  # entries spooled before kinds existed are pairs


def entry_id(entry: dict[str, str]) -> str:
    return entry["pair_id"] if is_pair(entry) else entry["record_id"]


def rewrites_record_id(query: str, pipeline_version: str, rewrites_json: str, origin: str = "") -> str:
    """Names one synthesis's ranking: a replay (spool, redelivery) repeats it, a fresh synthesis does not.
    The same query generated from two products (the LLM-free engines rank it the same) is two records."""
    key = f"{normalize_query(query)}\n{pipeline_version}\n{rewrites_json}"
    if origin not in ("", "query"):
        key += f"\n{origin}"
    return f"{REWRITES}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def rejected_json(result: SynthesisResult, limit: int = MAX_REJECTED) -> str:
    """The judge-rejected pairs with the highest scores, as a JSON list of {product_id, title, score}."""
    rejected = sorted((p for p in result.pairs if not p.accepted), key=lambda p: (-p.score, p.product_id))
    return json.dumps(
        [
            {"product_id": p.product_id, "title": p.title, "score": round(p.score, 4)}
            for p in rejected[:limit]
        ],
        ensure_ascii=False,
    )


def judged_json(result: SynthesisResult) -> str:
    """Every pair the synthesis judged, best score first, with each judge's score."""
    return json.dumps(
        [
            {
                "product_id": p.product_id,
                "title": p.title,
                "score": round(p.score, 4),
                "accepted": p.accepted,
                "judges": p.judges,
                "retrieval_score": p.retrieval_score,
                "found_by_query": p.found_by_query,
            }
            for p in result.pairs
        ],
        ensure_ascii=False,
    )


def rewrites_entry(result: SynthesisResult, created_at: str) -> dict[str, str]:
    rewrites = json.dumps([r.model_dump() for r in result.rewrites], ensure_ascii=False)
    return {
        "kind": REWRITES,
        "record_id": rewrites_record_id(result.query, result.pipeline_version, rewrites, result.origin),
        "query": result.query,
        "rewrites": rewrites,
        "dropped": json.dumps([d.model_dump() for d in result.dropped_candidates], ensure_ascii=False),
        "rejected": rejected_json(result),
        "judged": judged_json(result),
        "judge_version": result.judge_version,
        "origin": result.origin,
        "pipeline_version": result.pipeline_version,
        "created_at": created_at,
    }


def stream_entries(result: SynthesisResult) -> list[dict[str, str]]:
    """One flat string record per accepted pair, then the synthesis's rewrites record (its ranking and
    every judged pair)."""
    now = f"{time.time():.3f}"
    entries = []
    for pair in result.pairs:
        if not pair.accepted:
            continue
        rewrite = next((text for text in pair.retrieved_by if text != result.query), "")
        entries.append(
            {
                "pair_id": pair.pair_id,
                "query": result.query,
                "product_id": pair.product_id,
                "title": pair.title,
                "score": f"{pair.score:.4f}",
                "label": pair.label,
                "rewrite": rewrite,
                "retrieved_by": json.dumps(pair.retrieved_by, ensure_ascii=False),
                "judges": json.dumps(pair.judges, ensure_ascii=False),
                "origin": result.origin,
                "pipeline_version": result.pipeline_version,
                "created_at": now,
            }
        )
    if result.rewrites or result.dropped_candidates:
        entries.append(rewrites_entry(result, now))
    return entries


class TrainingStream:
    def __init__(self, redis: Redis, stream_key: str, seen_key: str) -> None:
        self.redis = redis
        self.stream_key = stream_key
        self.seen_key = seen_key
        self.script = redis.register_script(APPEND_ONCE)

    async def append(self, result: SynthesisResult) -> int:
        """Append the result's accepted pairs and rewrites record; return how many pairs were new."""
        return await self.append_entries(stream_entries(result))

    async def append_entries(self, entries: list[dict[str, str]]) -> int:
        """Append entries shaped by stream_entries(); return how many pairs were new."""
        if not entries:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                args = [entry_id(entry)] + [x for item in entry.items() for x in item]
                await self.script(keys=[self.seen_key, self.stream_key], args=args, client=pipe)
            replies = await pipe.execute()
        return sum(1 for entry, reply in zip(entries, replies, strict=True) if reply and is_pair(entry))
