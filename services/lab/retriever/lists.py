"""Per-query candidate lists with teacher scores: what the distillation losses train on.

A synthesis judged every product its query and rewrites retrieved; the store's rewrites records keep that
list with each judge's score (the `judged` column). For each normalised query the lists of all its
syntheses are merged (one entry per product). A stored score is used as the teacher's when the record
was judged by the same engine version as the teacher; every other candidate (older records, another
judge, products mined later) is scored by the teacher (services/lab/retriever/teacher.py). Records
written before the `judged` column give their accepted pairs and their rejected list, unscored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.core.text import clean, normalize_query
from services.lab.retriever.teacher import Teacher
from services.lab.store_files import read_rows

LIST_COLUMNS = ("query", "judged", "rejected", "judge_version")
LABEL_FLOOR = 0.02  # a human grade of 0 or 1 trains as 0.02 or 0.98 (log-odds -3.9, +3.9)


@dataclass
class Candidate:
    product_id: str
    text: str
    score: float | None = None  # the teacher's calibrated score; None until scored
    accepted: bool = False  # the synthesis's judges accepted it for the query
    label: float | None = None  # a human grade in [0, 1], when --labels judged the pair

    @property
    def target(self) -> float:
        """What the student learns for the pair: the human grade where there is one (kept off 0 and 1,
        so its log-odds stay in the teacher's range), else the teacher's score."""
        if self.label is not None:
            return min(max(self.label, LABEL_FLOOR), 1 - LABEL_FLOOR)
        return self.score or 0.0


@dataclass
class CandidateList:
    query: str  # the spelling the training uses for this normalised query
    candidates: dict[str, Candidate] = field(default_factory=dict)  # product id -> candidate

    def add(self, candidate: Candidate) -> None:
        kept = self.candidates.get(candidate.product_id)
        if kept is None:
            self.candidates[candidate.product_id] = candidate
            return
        kept.accepted |= candidate.accepted
        if kept.score is None:
            kept.score = candidate.score

    def ranked(self) -> list[Candidate]:
        """Target descending (the human grade, else the teacher's score), ties by product id."""
        return sorted(self.candidates.values(), key=lambda c: (-c.target, c.product_id))


def _items(row: dict[str, object], counts: Counter[str]) -> list[dict[str, object]] | None:
    raw = row.get("judged") or row.get("rejected")
    if not raw:
        return None
    try:
        items = json.loads(str(raw))
        if not isinstance(items, list):
            raise ValueError("not a list")
        return [dict(item) for item in items]
    except (TypeError, ValueError):
        counts["unreadable judged lists"] += 1
        return None


def read_lists(
    stores: Path | Sequence[Path],
    texts: dict[str, str],
    teacher: str,
    teacher_version: str,
    counts: Counter[str],
) -> dict[str, CandidateList]:
    """Candidate lists by normalised query from every rewrites file of the stores."""
    lists: dict[str, CandidateList] = {}
    stores = [stores] if isinstance(stores, Path) else stores
    for path in [path for store in stores for path in sorted(store.glob("rewrites-*.parquet"))]:
        for row in read_rows(path, LIST_COLUMNS, ("query",)):
            query = clean(str(row.get("query") or ""))
            items = _items(row, counts)
            if not query or items is None:
                counts["records without judged pairs"] += 1
                continue
            judged = bool(row.get("judged"))
            same_teacher = judged and teacher_version in str(row.get("judge_version") or "")
            if not judged:
                counts["records before the judged column (rejected pairs only)"] += 1
            else:
                counts[
                    "records with the teacher's scores" if same_teacher else "records of another judge"
                ] += 1
            entry = lists.setdefault(normalize_query(query), CandidateList(query))
            for item in items:
                product_id = clean(str(item.get("product_id") or ""))
                text = texts.get(product_id) or clean(str(item.get("title") or ""))
                if not product_id or not text:
                    counts["judged pairs without id or title"] += 1
                    continue
                judges = item.get("judges") if isinstance(item.get("judges"), dict) else {}
                stored = judges.get(teacher) if same_teacher and isinstance(judges, dict) else None
                score = float(stored) if isinstance(stored, int | float) else None
                entry.add(Candidate(product_id, text, score, bool(item.get("accepted", not judged))))
    return lists


def score_lists(lists: list[CandidateList], teacher: Teacher, progress: bool) -> int:
    """Fill in the teacher's score of every unscored candidate; return how many were missing."""
    missing = [(lst, c) for lst in lists for c in lst.candidates.values() if c.score is None]
    if missing:
        scores = teacher.scores([(lst.query, c.text) for lst, c in missing], progress)
        for (_, candidate), score in zip(missing, scores, strict=True):
            candidate.score = float(score)
    return len(missing)


def list_counts(lists: list[CandidateList]) -> dict[str, float]:
    sizes = np.array([len(lst.candidates) for lst in lists]) if lists else np.zeros(1)
    return {
        "queries": len(lists),
        "candidates": int(sizes.sum()),
        "mean_per_query": round(float(sizes.mean()), 2),
        "accepted": sum(c.accepted for lst in lists for c in lst.candidates.values()),
    }
