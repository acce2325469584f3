"""Lexical overlap: the share of the query's terms that the text contains. No model, microseconds a pair.

A weak judge on its own (it cannot see synonyms), useful as a second opinion in an ensemble: a
rewrite or product that shares no term with the query needs the semantic judges to be sure.
"""

from __future__ import annotations

import re

from services.judge.engine import JudgeEngine, Pair

_TERM = re.compile(r"[^\W_]+")


def terms(text: str) -> set[str]:
    """Case-folded word terms, a plural 's' dropped (drills -> drill) so number does not count."""
    out = set()
    for term in _TERM.findall(text.casefold()):
        if len(term) > 3 and term.endswith("s") and not term.endswith("ss"):
            term = term[:-1]
        out.add(term)
    return out


class LexicalJudge(JudgeEngine):
    name = "lexical"
    cheap = True

    def load(self) -> None:
        pass

    @property
    def version(self) -> str:
        return "lexical:1"

    def score(self, pairs: list[Pair]) -> list[float]:
        scores = []
        for query, text, _ in pairs:
            wanted = terms(query)
            scores.append(len(wanted & terms(text)) / len(wanted) if wanted else 0.0)
        return scores
