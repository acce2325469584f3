"""Negatives from the model being trained (ANCE-style refresh; the dynamic top-K of Retrieval-GRPO).

Every N steps the catalog and the training queries are encoded with the current weights, each query's
top K is retrieved, the products its list does not hold yet are scored by the teacher and join the
list: later steps train on what this model now retrieves. The cost per refresh is one pass over the
catalog plus the teacher on the new candidates; both are timed and shown in the progress bar.

What a refresh added is saved in the run's work directory (refresh-<step>.json), so a resumed run
rebuilds the same lists instead of re-encoding with weights it no longer has.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.catalog import Product
from services.core.durable import write_bytes
from services.lab.retriever.lists import Candidate, CandidateList, score_lists
from services.lab.retriever.teacher import Teacher

log = logging.getLogger(__name__)

SEARCH_CHUNK = 256


@dataclass(frozen=True)
class Refreshed:
    step: int
    added: int  # candidates that joined the lists
    seconds: float


def _file(work: Path, step: int) -> Path:
    return work / f"refresh-{step:06d}.json"


def _top(queries: np.ndarray, catalog: np.ndarray, depth: int) -> np.ndarray:
    rows = []
    for start in range(0, len(queries), SEARCH_CHUNK):
        scores = queries[start : start + SEARCH_CHUNK] @ catalog.T
        rows.append(np.argpartition(-scores, depth - 1, axis=1)[:, :depth])
    return np.concatenate(rows)


def refresh(
    model: Any,
    lists: list[CandidateList],
    products: list[Product],
    teacher: Teacher,
    depth: int,
    step: int,
    work: Path,
    progress: bool,
) -> Refreshed:
    """Mine and score new candidates with the current weights; save what was added."""
    began = time.monotonic()
    was_training = model.training
    model.eval()
    texts = [p.text() for p in products]
    options = {"batch_size": 128, "normalize_embeddings": True, "convert_to_numpy": True}
    catalog = model.encode(texts, show_progress_bar=progress, **options)
    queries = model.encode([lst.query for lst in lists], show_progress_bar=False, **options)
    if was_training:
        model.train()
    top = _top(queries, catalog, min(depth, len(products)))
    added: dict[str, list[str]] = {}
    for lst, row in zip(lists, top, strict=True):
        for index in row:
            product = products[int(index)]
            if product.id not in lst.candidates:
                lst.add(Candidate(product.id, texts[int(index)]))
                added.setdefault(lst.query, []).append(product.id)
    score_lists(lists, teacher, progress)
    record = {
        lst.query: [[pid, lst.candidates[pid].score] for pid in added[lst.query]]
        for lst in lists
        if lst.query in added
    }
    write_bytes(_file(work, step), json.dumps(record).encode())
    seconds = time.monotonic() - began
    count = sum(len(v) for v in added.values())
    log.info("refresh at step %d: %d new candidates in %.0f s", step, count, seconds)
    return Refreshed(step, count, seconds)


def replay(lists: list[CandidateList], products: list[Product], work: Path, upto: int) -> list[Refreshed]:
    """Re-apply the refreshes a run saved before step `upto` (a resumed run's lists as they were)."""
    by_query = {lst.query: lst for lst in lists}
    texts = {p.id: p.text() for p in products}
    done = []
    for path in sorted(work.glob("refresh-*.json")):
        step = int(path.stem.split("-")[1])
        if step > upto:
            continue
        record: dict[str, list[list[Any]]] = json.loads(path.read_text())
        for query, items in record.items():
            lst = by_query.get(query)
            if lst is None:
                continue
            for product_id, score in items:
                if product_id in texts:
                    lst.add(Candidate(product_id, texts[product_id], float(score)))
        done.append(Refreshed(step, sum(len(v) for v in record.values()), 0.0))
    return done
