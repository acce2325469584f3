"""Misspellings made from correct queries: one keyboard typo, always the same one for the same text."""

from __future__ import annotations

from services.pipeline.typos import NEIGHBOURS, misspell
from services.rewriter.spelling import osa_distance

QUERIES = ["cordless drill kit", "black bathroom vanity light", "expandable garden hose", "teak table"]


def test_one_word_gets_one_realistic_edit_and_the_rest_stay() -> None:
    for query in QUERIES:
        typo = misspell(query)
        assert typo is not None and typo != query
        changed = [(a, b) for a, b in zip(query.split(), typo.split(), strict=True) if a != b]
        assert len(changed) == 1
        word, mistyped = changed[0]
        assert mistyped[0] == word[0] and abs(len(word) - len(mistyped)) <= 1
        assert osa_distance(word, mistyped, 2) == 1  # one insertion, deletion, substitution or swap


def test_the_same_text_always_gets_the_same_typo() -> None:
    assert [misspell(q) for q in QUERIES] == [misspell(q) for q in QUERIES]
    assert len({misspell(q) for q in QUERIES}) == len(QUERIES)


def test_short_words_and_numbers_give_no_typo() -> None:
    assert misspell("20v pro kit") is None
    assert misspell("3/8 in. 10-pack") is None


def test_neighbours_are_adjacent_keys() -> None:
    assert set(NEIGHBOURS["s"]) == set("adwezx")
    assert set(NEIGHBOURS["p"]) == set("ol")
