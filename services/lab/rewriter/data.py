"""The rewriter's training data, from the training store's rewrites records.

Every synthesis stored its candidates ranked by the pipeline's reward (any source: the catalog engine,
the LLM itself, a larger teacher behind the openai engine) and the candidates the rewriter dropped (a
copy of the query, garbage). From them:

- SFT by rejection sampling: per query, its accepted candidates with the highest rewards, as one
  target listing several rewrites (format `list`, one per line: the parser splits lines) or one
  sample per rewrite (format `single`); optionally without near-copies of the query (the catalog
  engine's word drops and spelling fixes), which a small model imitates by copying its input;
- preference pairs for DPO: the store's partial order "reward higher by at least margin"
  (services/store/preferences.py), plus dropped candidates ranked under every scored one (reward 0);
- prompts for online RL (GRPO).

Every prompt is the chat conversation the rewriter serves (system text, few-shot turns, the query), so
training sees exactly what serving feeds the model. A query synthesised several times keeps each
candidate's best reward.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal

from services.core.errors import InvalidInput
from services.core.text import normalize_query
from services.lab.labels import query_bucket
from services.rewriter.prompts import PromptTemplate
from services.store.preferences import preference_pairs, read_records

Format = Literal["list", "single"]
FORMATS: tuple[Format, ...] = ("list", "single")
# Dropped for these reasons, a candidate is worse than any scored one; a duplicate is not.
BAD_DROPS = ("copy_of_query", "too_long", "not_text", "empty")
NearCopies = Literal["keep", "drop"]
NEAR_COPIES: tuple[NearCopies, ...] = ("keep", "drop")
NEAR_COPY_SIMILARITY = 0.85  # difflib ratio of the normalised texts: a typo or a plural apart


def _stems(text: str) -> set[str]:
    return {word.rstrip("s") for word in normalize_query(text).split()}


def is_near_copy(query: str, text: str) -> bool:
    """Only the query's own words (some dropped, reordered or made plural), or a few characters apart."""
    q, t = normalize_query(query), normalize_query(text)
    return _stems(t) <= _stems(q) or SequenceMatcher(None, q, t).ratio() >= NEAR_COPY_SIMILARITY


@dataclass(frozen=True)
class Scored:
    text: str
    source: str
    reward: float
    accepted: bool


@dataclass
class QueryRecord:
    """One query over all its syntheses: every candidate at its best reward, and the dropped ones."""

    query: str
    candidates: dict[str, Scored] = field(default_factory=dict)  # by normalised text
    dropped: set[str] = field(default_factory=set)

    def ranked(self) -> list[Scored]:
        return sorted(self.candidates.values(), key=lambda c: (-c.reward, c.text))

    def best(self, k: int, min_reward: float, near_copies: NearCopies = "keep") -> list[Scored]:
        return [
            c
            for c in self.ranked()
            if c.accepted
            and c.reward >= min_reward
            and (near_copies == "keep" or not is_near_copy(self.query, c.text))
        ][:k]


@dataclass
class StoreData:
    store: Path
    records: int
    skipped: int
    queries: list[QueryRecord]

    def report(self) -> str:
        candidates = sum(len(q.candidates) for q in self.queries)
        accepted = sum(c.accepted for q in self.queries for c in q.candidates.values())
        dropped = sum(len(q.dropped) for q in self.queries)
        return (
            f"{self.store}: {self.records} rewrites records ({self.skipped} unreadable) over "
            f"{len(self.queries)} queries: {candidates} scored candidates ({accepted} accepted), "
            f"{dropped} dropped"
        )


def _is_bad_drop(reason: str) -> bool:
    return reason.split(" ", 1)[0] in BAD_DROPS


def load_store(store: Path, exclude: set[str] | None = None) -> StoreData:
    """Every query's candidates from the store; queries in `exclude` (normalised) are left out.
    A missing store or one without rewrites records is refused."""
    records, skipped = read_records(store)
    if not records:
        raise InvalidInput(
            f"{store}: no rewrites records (rewrites-*.parquet); synthesize some queries first"
        )
    by_query: dict[str, QueryRecord] = {}
    for record in records:
        key = normalize_query(record["query"])
        if not key or (exclude and key in exclude):
            continue
        entry = by_query.setdefault(key, QueryRecord(record["query"]))
        for r in record["rewrites"]:
            text_key = normalize_query(r["text"])
            old = entry.candidates.get(text_key)
            if old is None or r["reward"] > old.reward:
                entry.candidates[text_key] = Scored(r["text"], r["source"], float(r["reward"]), r["accepted"])
        entry.dropped.update(d["text"] for d in record["dropped"] if _is_bad_drop(d["reason"]))
    for entry in by_query.values():  # a text scored in one synthesis and dropped in another is scored
        entry.dropped = {d for d in entry.dropped if d and normalize_query(d) not in entry.candidates}
    return StoreData(store, len(records), skipped, sorted(by_query.values(), key=lambda q: q.query))


def dev_split(queries: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, dev) by a seeded hash of the normalised query (its own salt, independent of the labels'
    split): settings are chosen on dev queries, never on the held-out ones."""
    if not 0 <= fraction < 1:
        raise InvalidInput("--dev-fraction must be in [0, 1)")
    train: list[str] = []
    dev: list[str] = []
    for q in queries:
        (dev if query_bucket(q, seed + 1000) < fraction else train).append(q)
    return train, dev


def completion(texts: Sequence[str]) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": "\n".join(texts)}]


def sft_rows(
    data: StoreData,
    prompt: PromptTemplate,
    fmt: Format,
    k: int,
    min_reward: float,
    near_copies: NearCopies = "keep",
) -> list[dict[str, Any]]:
    """Prompt-completion rows (conversational) of each query's best accepted candidates."""
    rows: list[dict[str, Any]] = []
    for q in data.queries:
        best = [c.text for c in q.best(k, min_reward, near_copies)]
        if not best:
            continue
        groups = [best] if fmt == "list" else [[text] for text in best]
        rows += [
            {"prompt": prompt.messages(q.query), "completion": completion(g), "query": q.query}
            for g in groups
        ]
    return rows


def preference_rows(
    data: StoreData,
    prompt: PromptTemplate,
    fmt: Format,
    k: int,
    margin: float,
    per_query: int,
    near_copies: NearCopies = "keep",
) -> list[dict[str, Any]]:
    """Chosen/rejected rows (conversational). `single`: pairs of the store's partial order by reward,
    dropped candidates under every scored one, the widest margins first, at most per_query a query.
    `list`: the best accepted candidates against the worst ones (dropped first), when the mean rewards
    differ by at least the margin. With near_copies "drop", a near-copy of the query is never chosen
    (it may still be rejected)."""
    rows: list[dict[str, Any]] = []
    for q in data.queries:
        ranked: list[dict[str, Any]] = [
            {"text": c.text, "source": c.source, "reward": c.reward} for c in q.ranked()
        ]
        ranked += [{"text": d, "source": "dropped", "reward": 0.0} for d in sorted(q.dropped)]
        if fmt == "single":
            pairs = sorted(
                (
                    p
                    for p in preference_pairs(ranked, margin)
                    if near_copies == "keep" or not is_near_copy(q.query, p["chosen"])
                ),
                key=lambda p: (-(p["chosen_reward"] - p["rejected_reward"]), p["chosen"], p["rejected"]),
            )[:per_query]
            rows += [
                {
                    "prompt": prompt.messages(q.query),
                    "chosen": completion([p["chosen"]]),
                    "rejected": completion([p["rejected"]]),
                    "margin": round(p["chosen_reward"] - p["rejected_reward"], 4),
                    "query": q.query,
                }
                for p in pairs
            ]
            continue
        best = q.best(k, 0.0, near_copies)
        chosen_texts = {c.text for c in best}
        worst = sorted(
            (r for r in ranked if r["text"] not in chosen_texts), key=lambda r: (r["reward"], r["text"])
        )[:k]
        if not best or not worst:
            continue
        gap = sum(c.reward for c in best) / len(best) - sum(r["reward"] for r in worst) / len(worst)
        if gap >= margin:
            rows.append(
                {
                    "prompt": prompt.messages(q.query),
                    "chosen": completion([c.text for c in best]),
                    "rejected": completion([r["text"] for r in worst]),
                    "margin": round(gap, 4),
                    "query": q.query,
                }
            )
    return rows


def prompt_rows(data: StoreData, prompt: PromptTemplate) -> list[dict[str, Any]]:
    """One GRPO prompt per query of the store."""
    return [{"prompt": prompt.messages(q.query), "query": q.query} for q in data.queries]


def rows_sha256(rows: Sequence[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()
