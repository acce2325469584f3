"""Misspelled copies of the training queries: robustness to typos, which the labels hardly teach.

About a quarter of the Home Depot queries hold a word no product title spells that way ("celing fans",
"sodering iron"), and WordPiece cuts a mistyped word into pieces the pre-trained encoder rarely saw
together. Each query's list gets a copy whose query has one keyboard typo (services/pipeline/typos.py: a
letter dropped, doubled, swapped or replaced by a neighbouring key), with the clean query's candidates
and targets: the student learns to rank for the misspelling what the teacher ranks for the spelling
(typo-aware training with the clean query as the teacher; Zhuang & Zuccon 2021, 2022). The teacher
never scores a misspelled query, so the copies cost training steps, not teacher time.
"""

from __future__ import annotations

from dataclasses import replace

from services.core.text import normalize_query
from services.lab.retriever.lists import CandidateList
from services.pipeline.typos import misspell


def misspelled_copies(lists: list[CandidateList]) -> list[CandidateList]:
    """One copy of each list under its query with one typo; none where the query has no word to
    mistype (short words, numbers) or where the typo spells another training query."""
    taken = {normalize_query(lst.query) for lst in lists}
    copies = []
    for lst in lists:
        typo = misspell(lst.query)
        if typo is None or normalize_query(typo) in taken:
            continue
        taken.add(normalize_query(typo))
        candidates = {pid: replace(candidate) for pid, candidate in lst.candidates.items()}
        copies.append(CandidateList(typo, candidates, misspelling_of=normalize_query(lst.query)))
    return copies
