"""Tiny training stores written with the sink's own schema: rewrites records of a few queries."""

from __future__ import annotations

import json
from pathlib import Path

from services.store.sink import REWRITES_SCHEMA, write_parquet_durably

# query -> [(rewrite, source, reward, accepted)], [(dropped text, reason)]
QUERIES: dict[str, tuple[list[tuple[str, str, float, bool]], list[tuple[str, str]]]] = {
    "cordless drill for deck screws": (
        [
            ("cordless drill driver", "catalog:relax", 0.62, True),
            ("impact driver deck screws", "llm:hf", 0.55, True),
            ("car battery usb port drill", "llm:hf", 0.12, False),
        ],
        [("cordless drill for deck screws", "copy_of_query")],
    ),
    "something to keep bath water warm": (
        [
            ("bath water heater", "llm:hf", 0.58, True),
            ("bathtub heater", "catalog:prf", 0.51, True),
            ("warm towel", "llm:hf", 0.2, False),
        ],
        [("<<>>", "not_text")],
    ),
    "deck over": (
        [
            ("deck resurfacer", "catalog:prf", 0.66, True),
            ("deck restore paint", "llm:hf", 0.49, True),
            ("over the deck", "llm:hf", 0.31, True),
        ],
        [],
    ),
    "led shop light": (
        [("led shop light fixture", "llm:hf", 0.6, True), ("garage ceiling light", "llm:hf", 0.44, True)],
        [("led shop light", "copy_of_query")],
    ),
}


def rewards(reward: float) -> dict[str, float]:
    return {
        "intent": reward, "product_relevance": reward, "relevance": reward, "increment": 0.0,
        "alignment": reward, "diversity": 1.0,
    }  # fmt: skip


def record(n: int, query: str, queries: dict = QUERIES) -> dict[str, object]:  # type: ignore[type-arg]
    ranked, dropped = queries[query]
    rewrites = [
        {
            "text": text,
            "source": source,
            "accepted": accepted,
            "reason": "r",
            "rewards": rewards(reward),
            "reward": reward,
            "rank": rank,
            "retrieved": 5,
        }  # fmt: skip
        for rank, (text, source, reward, accepted) in enumerate(ranked, start=1)
    ]
    return {
        "record_id": f"rewrites:{n}", "query": query, "rewrites": json.dumps(rewrites),
        "dropped": json.dumps([{"text": t, "reason": r} for t, r in dropped]), "rejected": "[]",
        "pipeline_version": "v1", "created_at": float(n), "stream_id": f"{n}-1",
    }  # fmt: skip


def write_store(store: Path, queries: dict = QUERIES) -> Path:  # type: ignore[type-arg]
    rows = [record(n, q, queries) for n, q in enumerate(queries)]
    write_parquet_durably(store, rows, "rewrites", REWRITES_SCHEMA)
    return store
