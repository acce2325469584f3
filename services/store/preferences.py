"""Preference data for training rewriters, from the training store's rewrites records.

Every synthesis stored its candidates ranked by reward. A candidate is preferred to another when its
reward is higher by at least `margin`: that relation is a strict partial order (transitive, and
candidates closer than the margin stay unordered), and its pairs are the chosen/rejected examples
that Bradley-Terry or DPO training consumes.

Two shapes: one row per synthesised query (its ranking, the partial order's pairs, the dropped
candidates), or --flat: one row per (prompt, chosen, rejected) pair, as DPO trainers read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.core.durable import publish
from services.core.errors import InvalidInput

FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class ExportSummary:
    records: int  # syntheses read from the store
    queries: int  # rows with at least one preference pair
    pairs: int  # chosen/rejected pairs written
    skipped: int  # unreadable records (named in the log)
    rows: int  # rows written


def read_records(store_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """Rewrites records in the store, oldest first, with their JSON decoded; and how many were unreadable."""
    if not store_dir.is_dir():
        raise InvalidInput(f"no training store at {store_dir}")
    records: list[dict[str, Any]] = []
    skipped = 0
    for path in sorted(store_dir.glob("rewrites-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            try:
                rewrites = json.loads(row["rewrites"])
                dropped = json.loads(row["dropped"] or "[]")
                if not isinstance(rewrites, list) or not isinstance(dropped, list):
                    raise ValueError("not a list")
            except (TypeError, ValueError):
                skipped += 1
                continue
            records.append({**row, "rewrites": rewrites, "dropped": dropped})
    records.sort(key=lambda r: r["created_at"])
    return records, skipped


def preference_pairs(ranked: list[dict[str, Any]], margin: float) -> list[dict[str, Any]]:
    """(chosen, rejected) for every two candidates whose rewards differ by at least margin."""
    pairs = []
    for high in ranked:
        for low in ranked:
            if high["reward"] - low["reward"] >= margin:
                pairs.append(
                    {
                        "chosen": high["text"],
                        "rejected": low["text"],
                        "chosen_reward": high["reward"],
                        "rejected_reward": low["reward"],
                        "chosen_source": high["source"],
                        "rejected_source": low["source"],
                    }
                )
    return pairs


def query_row(record: dict[str, Any], margin: float) -> dict[str, Any]:
    ranked = sorted(record["rewrites"], key=lambda r: r["reward"], reverse=True)
    return {
        "query": record["query"],
        "origin": record.get("origin") or "",  # files from before the column have none
        "pipeline_version": record["pipeline_version"],
        "ranking": [
            {
                "text": r["text"],
                "source": r["source"],
                "reward": r["reward"],
                "accepted": r["accepted"],
                "reason": r["reason"],
                **{f"reward_{name}": value for name, value in r["rewards"].items()},
            }
            for r in ranked
        ],
        "pairs": preference_pairs(ranked, margin),
        "dropped": [{"text": d["text"], "reason": d["reason"]} for d in record["dropped"]],
    }


def flat_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"prompt": row["query"], **pair, "margin": round(pair["chosen_reward"] - pair["rejected_reward"], 4)}
        | {"origin": row["origin"], "pipeline_version": row["pipeline_version"]}
        for pair in row["pairs"]
    ]


def _write(rows: list[dict[str, Any]], out: Path, fmt: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if fmt == "jsonl":
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    publish(tmp, out)


def output_format(out: Path, requested: str | None) -> str:
    fmt = requested or {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}.get(out.suffix.lower())
    if fmt not in FORMATS:
        raise InvalidInput(f"cannot tell the format of {out.name}: pass --format jsonl or --format parquet")
    return fmt


def export_preferences(
    store_dir: Path, out: Path, fmt: str | None = None, margin: float = 0.05, flat: bool = False
) -> ExportSummary:
    if not 0 <= margin <= 1:
        raise InvalidInput(f"--margin must be between 0 and 1, got {margin}")
    fmt = output_format(out, fmt)
    records, skipped = read_records(store_dir)
    per_query = [query_row(record, margin) for record in records]
    rows = [r for row in per_query for r in flat_rows(row)] if flat else per_query
    if fmt == "parquet" and not rows:
        raise InvalidInput("no preference rows to write (the store holds no rewrites records with pairs)")
    _write(rows, out, fmt)
    return ExportSummary(
        records=len(records),
        queries=sum(1 for row in per_query if row["pairs"]),
        pairs=sum(len(row["pairs"]) for row in per_query),
        skipped=skipped,
        rows=len(rows),
    )
