"""Candidates a lexical retriever finds: BM25 over the catalog's indexed text (bm25s).

A query's judged list holds what the dense retriever found for it and its rewrites, so a teacher can only
re-rank products the base encoder already retrieves. Word-matching retrieval finds others (model numbers,
brands, sizes, rare words), and the two overlap little: on the dev queries of Home Depot's synthesis side,
BM25's top 100 alone holds about as many relevant products as MiniLM's (recall@100 0.655 vs 0.661), and
the union of the two 0.790. The products BM25 adds join each query's list unscored; the teacher scores
them like any other candidate, so the student learns the relevant ones as relevant and the rest as not.
"""

from __future__ import annotations

import logging
import time

from services.lab.retriever.lists import Candidate, CandidateList

log = logging.getLogger(__name__)

# The depth with --catalog and a distillation loss: on those dev queries MiniLM's top 20 holds 0.438 of the
# relevant products, with BM25's top 10/20/30/50 added 0.543/0.591/0.623/0.662; the teacher's cost grows
# with the depth, and a student trained at depth 50 did not retrieve better there (recall@100 0.709 against
# 0.713 at 30).
DEFAULT_DEPTH = 30


def add_lexical_candidates(
    lists: list[CandidateList], texts: dict[str, str], depth: int, progress: bool = False
) -> int:
    """Each list gains its query's top `depth` products by BM25 (a positive score: a shared word) that it
    does not hold yet; returns how many joined. Deterministic: the same catalog and queries give the same
    candidates."""
    import bm25s

    # Its import sets its logger to DEBUG: every index build and empty query would reach our log.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    began = time.monotonic()
    ids = sorted(texts)
    corpus = bm25s.tokenize([texts[i] for i in ids], stopwords="en", show_progress=False)
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    queries = bm25s.tokenize([lst.query for lst in lists], stopwords="en", show_progress=False)
    found, scores = index.retrieve(queries, k=min(depth, len(ids)), show_progress=progress, n_threads=0)
    added = 0
    for lst, rows, row_scores in zip(lists, found, scores, strict=True):
        for position, score in zip(rows, row_scores, strict=True):
            product_id = ids[int(position)]
            if score > 0 and product_id not in lst.candidates:
                lst.add(Candidate(product_id, texts[product_id]))
                added += 1
    log.info("BM25 top %d: %d new candidates in %.0f s", depth, added, time.monotonic() - began)
    return added
