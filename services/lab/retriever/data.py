"""The retriever's training examples: the training store's accepted pairs, optionally human labels.

Each example is (query, positive, negative): the query as the shopper typed it, the text the index
embeds for an accepted product (its catalog text when --catalog knows the id, else its stored title)
and, when the store holds one, a hard negative: a product the judges rejected for the same query,
the highest-scoring first (each synthesis's rewrites record keeps its 10 hardest). Pairs repeat
across syntheses and files, so (normalised query, product) is kept once; every row left out is
counted by reason, and unreadable files stop the run with their name instead of training on less.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.catalog import load_catalog
from services.core.errors import InvalidInput
from services.core.text import clean, normalize_query
from services.lab.labels import LabelSet
from services.lab.retriever.lexical import add_lexical_candidates
from services.lab.retriever.lists import Candidate, CandidateList, list_counts, read_lists, score_lists
from services.lab.retriever.teacher import Teacher
from services.lab.store_files import read_rows

PAIR_COLUMNS = ("query", "product_id", "title")


@dataclass(frozen=True, slots=True)
class Example:
    query: str
    positive: str
    negative: str = ""  # "" when the query has no hard negative
    source: str = "store"  # store, labels, or teacher (a pseudo-label of the contrastive stage)
    product_id: str = ""


@dataclass(frozen=True, slots=True)
class Negative:
    product_id: str
    text: str
    score: float


@dataclass
class TrainingData:
    stores: list[Path]
    examples: list[Example]
    pairs_files: int = 0
    rewrites_files: int = 0
    pairs_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    negatives: Counter[str] = field(default_factory=Counter)
    labels: LabelSet | None = None
    lists: list[CandidateList] = field(default_factory=list)  # judged candidates (distillation)
    list_sources: Counter[str] = field(default_factory=Counter)
    texts: dict[str, str] = field(default_factory=dict, repr=False)  # catalog text by product id

    @property
    def sha256(self) -> str:
        """Names the examples' content (not the files they came from)."""
        digest = hashlib.sha256()
        for e in self.examples:
            digest.update(json.dumps([e.query, e.positive, e.negative], ensure_ascii=False).encode() + b"\n")
        return digest.hexdigest()

    def counts(self) -> dict[str, Any]:
        return {
            "pairs_files": self.pairs_files,
            "rewrites_files": self.rewrites_files,
            "pairs_read": self.pairs_read,
            "examples": len(self.examples),
            "queries": len({normalize_query(e.query) for e in self.examples}),
            "products": len({e.positive for e in self.examples}),
            "from_labels": sum(e.source == "labels" for e in self.examples),
            "hard_negatives": sum(bool(e.negative) for e in self.examples),
            "skipped": dict(sorted(self.skipped.items())),
            "negatives": dict(sorted(self.negatives.items())),
        } | (
            {"lists": list_counts(self.lists), "list_sources": dict(sorted(self.list_sources.items()))}
            if self.lists
            else {}
        )

    def report(self) -> str:
        c = self.counts()
        lines = [
            f"{', '.join(map(str, self.stores)) or 'no store'}: {c['pairs_read']} accepted pairs in "
            f"{c['pairs_files']} files -> "
            f"{c['examples']} examples over {c['queries']} queries ({c['from_labels']} from labels, "
            f"{c['hard_negatives']} with a hard negative)"
        ]
        lines += [f"skipped {n}: {reason}" for reason, n in sorted(self.skipped.items())]
        lines += [f"hard negatives: {n} {what}" for what, n in sorted(self.negatives.items())]
        if self.lists:
            counts = list_counts(self.lists)
            lines.append(
                f"candidate lists: {counts['queries']} queries, {counts['candidates']} candidates "
                f"({counts['mean_per_query']} a query, {counts['accepted']} accepted by the synthesis)"
            )
            lines += [f"candidate lists: {n} {what}" for what, n in sorted(self.list_sources.items())]
        if self.labels is not None:
            lines.append(self.labels.report())
        return "\n  ".join(lines)


def catalog_texts(catalog: Path | None) -> dict[str, str]:
    return {p.id: p.text() for p in load_catalog(catalog)} if catalog else {}


def read_negatives(
    stores: Sequence[Path], texts: dict[str, str], counts: Counter[str]
) -> tuple[dict[str, dict[str, Negative]], int]:
    """Judge-rejected products per normalised query (best score per product), and files read."""
    by_query: dict[str, dict[str, Negative]] = {}
    files = [path for store in stores for path in sorted(store.glob("rewrites-*.parquet"))]
    for path in files:
        for row in read_rows(path, ("query", "rejected"), ("query",)):
            if "rejected" not in row:
                counts["records written before the rejected column"] += 1
                continue
            try:
                items = json.loads(row["rejected"] or "[]")
                if not isinstance(items, list):
                    raise ValueError("not a list")
                parsed = [(str(i["product_id"]), clean(str(i["title"])), float(i["score"])) for i in items]
            except (TypeError, ValueError, KeyError):
                counts["unreadable rejected lists"] += 1
                continue
            negatives = by_query.setdefault(normalize_query(row["query"] or ""), {})
            for product_id, title, score in parsed:
                text = texts.get(product_id) or title
                if not product_id or not text:
                    counts["rejected without id or title"] += 1
                elif product_id not in negatives or negatives[product_id].score < score:
                    negatives[product_id] = Negative(product_id, text, score)
    return by_query, len(files)


def load_training_data(
    stores: Path | Sequence[Path],
    catalog: Path | None = None,
    labels: LabelSet | None = None,
    hard_negatives: bool = True,
    teacher: Teacher | None = None,
    progress: bool = False,
) -> TrainingData:
    """The stores' examples (accepted pairs, human labels, hard negatives) and, with a teacher, every
    query's judged candidates scored by it (add_lists). With labels, a store may be empty or absent:
    the labels alone are trained on."""
    stores = [stores] if isinstance(stores, Path) else list(stores)
    files = []
    for store in stores:
        if not store.is_dir():
            if labels is not None:
                continue
            raise InvalidInput(f"no training store at {store}")
        in_store = sorted(store.glob("pairs-*.parquet"))
        if not in_store and labels is None:
            raise InvalidInput(
                f"{store} holds no pairs-*.parquet files (the sink writes accepted pairs there)"
            )
        files += in_store
    stores = [store for store in stores if store.is_dir()]
    texts = catalog_texts(catalog)
    data = TrainingData(stores, [], pairs_files=len(files), labels=labels)
    # (normalised query, product key) -> (anchor, positive text, source, product id)
    kept: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    anchors: dict[str, str] = {}  # one spelling per query, so a batch can tell repeats apart

    def keep(query: str, key: str, text: str, source: str, product_id: str) -> None:
        nq = normalize_query(query)
        if (nq, key) in kept:
            data.skipped["duplicate pair"] += 1
            return
        kept[(nq, key)] = (anchors.setdefault(nq, query), text, source, product_id)

    for path in files:
        for row in read_rows(path, PAIR_COLUMNS, PAIR_COLUMNS):
            data.pairs_read += 1
            query, product_id = clean(row["query"] or ""), clean(row["product_id"] or "")
            text = texts.get(product_id) or clean(row["title"] or "")
            if not query:
                data.skipped["empty query"] += 1
            elif not product_id:
                data.skipped["empty product id"] += 1
            elif not text:
                data.skipped["empty title"] += 1
            else:
                keep(query, product_id, text, "store", product_id)
    if data.pairs_read == 0 and labels is None:
        raise InvalidInput(f"{', '.join(map(str, stores))}: the pairs files hold no accepted pairs")
    if labels is not None:
        for pair in labels.pairs:
            if pair.relevant:
                keep(pair.query, pair.product, pair.text, "labels", pair.product)
            else:
                data.skipped["labelled not relevant"] += 1

    negatives: dict[str, dict[str, Negative]] = {}
    if hard_negatives:
        negatives, data.rewrites_files = read_negatives(stores, texts, data.negatives)
    positives: dict[str, set[str]] = {}
    for (nq, _), (_, text, _, product_id) in kept.items():
        positives.setdefault(nq, set()).update({product_id, text})
    per_query: dict[str, list[Negative]] = {}
    for nq, found in negatives.items():
        usable = [n for n in found.values() if not {n.product_id, n.text} & positives.get(nq, set())]
        data.negatives["also accepted for the query (not used)"] += len(found) - len(usable)
        per_query[nq] = sorted(usable, key=lambda n: (-n.score, n.product_id))

    used: Counter[str] = Counter()
    for (nq, _), (anchor, text, source, product_id) in sorted(kept.items()):
        options = per_query.get(nq, [])
        negative = options[used[nq] % len(options)].text if options else ""
        used[nq] += 1
        data.examples.append(Example(anchor, text, negative, source, product_id))
    data.negatives["products available"] = sum(len(v) for v in per_query.values())
    if not data.examples:
        raise InvalidInput("no usable pairs\n  " + data.report())
    data.texts = texts
    if teacher is not None:
        add_lists(data, teacher, progress)
    return data


def add_lists(data: TrainingData, teacher: Teacher, progress: bool = False, lexical_depth: int = 0) -> None:
    """Per query: its judged candidates, its accepted pairs, (with labels) its labelled products and
    (with lexical_depth) its top products by BM25 over the catalog, each scored by the teacher; a
    labelled product also carries its human grade."""
    labels = data.labels
    lists = read_lists(data.stores, data.texts, teacher.name, teacher.version, data.list_sources)
    for example in data.examples:
        if example.source == "store":
            entry = lists.setdefault(normalize_query(example.query), CandidateList(example.query))
            entry.add(Candidate(example.product_id, example.positive, accepted=True))
    if labels is not None:
        for pair in labels.pairs:
            nq = normalize_query(pair.query)
            entry = lists.setdefault(nq, CandidateList(pair.query))
            entry.add(Candidate(pair.product, pair.text, accepted=pair.relevant))
            entry.candidates[pair.product].label = pair.grade
    found = sorted(lists.values(), key=lambda lst: normalize_query(lst.query))
    if lexical_depth:
        if not data.texts:
            raise InvalidInput("--lexical-depth needs --catalog (the products BM25 searches)")
        added = add_lexical_candidates(found, data.texts, lexical_depth, progress)
        data.list_sources[f"candidates from BM25's top {lexical_depth}"] = added
    data.list_sources["candidates scored by the teacher now"] = score_lists(found, teacher, progress)
    data.lists = found
